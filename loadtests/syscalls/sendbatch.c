/*
 * What a small send costs the sender on this machine: 100 loopback TCP sockets, a reader process draining them with
 * epoll, and rounds of one 120-byte send to each socket, 100 rounds a second; either a send() per socket (mode 0) or
 * the round's 100 sends in one io_uring_enter (mode 1), as the gateway's SendBatch does. Prints the sender's CPU per
 * send from getrusage, user and system apart. docs/benchmarks.md ("What changed: one system call per round") quotes it.
 *   gcc -O2 -Wall -o /tmp/sendbatch loadtests/syscalls/sendbatch.c
 *   for i in 1 2 3 4 5; do /tmp/sendbatch 0 1000; /tmp/sendbatch 1 1000; done
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define N 100

static int ring_fd;
static unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
static struct io_uring_sqe *sqes;
static struct io_uring_cqe *cqes;

static void setup_ring(void) {
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  ring_fd = syscall(__NR_io_uring_setup, 256, &p);
  if (ring_fd < 0) { perror("io_uring_setup"); exit(1); }
  size_t sring = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  size_t cring = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  size_t ring = sring > cring ? sring : cring; /* IORING_FEAT_SINGLE_MMAP, kernels since 5.4 */
  char *sq = mmap(0, ring, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd, IORING_OFF_SQ_RING);
  sq_tail = (unsigned *)(sq + p.sq_off.tail);
  sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
  sq_array = (unsigned *)(sq + p.sq_off.array);
  cq_head = (unsigned *)(sq + p.cq_off.head);
  cq_tail = (unsigned *)(sq + p.cq_off.tail);
  cq_mask = (unsigned *)(sq + p.cq_off.ring_mask);
  cqes = (struct io_uring_cqe *)(sq + p.cq_off.cqes);
  sqes = mmap(0, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd, IORING_OFF_SQES);
}

static void reader(int port) {
  int ep = epoll_create1(0);
  for (int i = 0; i < N; i++) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s, (void *)&a, sizeof a) < 0) { perror("connect"); exit(1); }
    struct epoll_event e = {.events = EPOLLIN, .data.fd = s};
    epoll_ctl(ep, EPOLL_CTL_ADD, s, &e);
  }
  char buf[4096];
  struct epoll_event ev[64];
  for (;;) {
    int n = epoll_wait(ep, ev, 64, -1);
    for (int i = 0; i < n; i++) {
      if (read(ev[i].data.fd, buf, sizeof buf) <= 0) exit(0);
    }
  }
}

static void cpu(double *user, double *sys) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  *user = u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6;
  *sys = u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: %s 0|1 rounds\n", argv[0]); return 2; }
  int mode = atoi(argv[1]), rounds = atoi(argv[2]), one = 1;
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(l, (void *)&a, sizeof a);
  listen(l, 128);
  socklen_t len = sizeof a;
  getsockname(l, (void *)&a, &len);
  pid_t pid = fork();
  if (pid == 0) { reader(ntohs(a.sin_port)); return 0; }
  int fds[N];
  for (int i = 0; i < N; i++) {
    fds[i] = accept(l, 0, 0);
    setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  setup_ring();
  char msg[120];
  memset(msg, 'x', sizeof msg);
  double u0, s0, u1, s1;
  cpu(&u0, &s0);
  for (int r = 0; r < rounds; r++) {
    if (mode == 0) {
      for (int i = 0; i < N; i++) {
        if (send(fds[i], msg, sizeof msg, MSG_DONTWAIT | MSG_NOSIGNAL) != sizeof msg) perror("send");
      }
    } else {
      unsigned tail = *sq_tail;
      for (int i = 0; i < N; i++, tail++) {
        unsigned idx = tail & *sq_mask;
        struct io_uring_sqe *s = &sqes[idx];
        memset(s, 0, sizeof *s);
        s->opcode = IORING_OP_SEND;
        s->fd = fds[i];
        s->addr = (unsigned long)msg;
        s->len = sizeof msg;
        s->msg_flags = MSG_DONTWAIT | MSG_NOSIGNAL;
        s->user_data = i;
        sq_array[idx] = idx;
      }
      atomic_store_explicit((_Atomic unsigned *)sq_tail, tail, memory_order_release);
      if (syscall(__NR_io_uring_enter, ring_fd, N, N, IORING_ENTER_GETEVENTS, NULL, 0) != N) perror("io_uring_enter");
      unsigned h = *cq_head, t = atomic_load_explicit((_Atomic unsigned *)cq_tail, memory_order_acquire);
      for (; h != t; h++) {
        if (cqes[h & *cq_mask].res != sizeof msg) fprintf(stderr, "send result %d\n", cqes[h & *cq_mask].res);
      }
      atomic_store_explicit((_Atomic unsigned *)cq_head, h, memory_order_release);
    }
    struct timespec pause = {0, 10 * 1000 * 1000};
    nanosleep(&pause, 0);
  }
  cpu(&u1, &s1);
  double sends = (double)rounds * N;
  printf("mode %d (%s): %.2f us of CPU per send (user %.2f, system %.2f)\n", mode, mode ? "one io_uring_enter a round" : "a send() each",
         ((u1 - u0) + (s1 - s0)) * 1e6 / sends, (u1 - u0) * 1e6 / sends, (s1 - s0) * 1e6 / sends);
  for (int i = 0; i < N; i++) close(fds[i]);
  waitpid(pid, 0, 0);
  return 0;
}
