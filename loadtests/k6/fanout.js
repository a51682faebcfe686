// Fan-out: CONNECTIONS subscribers spread over WS_URLS, RATE publications per second through REST; the payload carries
// the send time, so the subscribers measure end-to-end latency.
//   k6 run -e WS_URLS=ws://a/ws,ws://b/ws -e PUBLISH_URL=http://a -e CONNECTIONS=2000 -e RATE=100 loadtests/k6/fanout.js
import http from 'k6/http';
import { check } from 'k6';
import { WebSocket } from 'k6/websockets';
import { Counter, Trend } from 'k6/metrics';
import { WS_URLS, PUBLISH_URL, CHANNELS, CONNECTIONS, RATE, DURATION, PAYLOAD_BYTES, channelsOf, publishHeaders } from './common.js';

const latency = new Trend('push_latency_ms', true);
const delivered = new Counter('push_delivered');
const gaps = new Counter('push_offset_gaps');

export const options = {
  scenarios: {
    subscribers: { executor: 'per-vu-iterations', vus: CONNECTIONS, iterations: 1, maxDuration: '10m', exec: 'subscribe' },
    publisher: { executor: 'constant-arrival-rate', rate: RATE, timeUnit: '1s', duration: DURATION, startTime: '5s',
      preAllocatedVUs: 50, exec: 'publish' },
  },
  thresholds: {
    push_latency_ms: ['p(99)<10'],
    http_req_failed: ['rate<0.001'],
    push_offset_gaps: ['count==0'],
  },
};

export function subscribe() {
  const index = __VU - 1;
  const ws = new WebSocket(WS_URLS[index % WS_URLS.length]);
  const last = {};
  let id = 1;
  ws.onopen = () => {
    ws.send(JSON.stringify({ op: 'connect', id: id++ }));
    for (const channel of channelsOf(index)) {
      ws.send(JSON.stringify({ op: 'subscribe', id: id++, channel }));
    }
  };
  ws.onmessage = (event) => {
    // A server frame may hold several pushes separated by newlines.
    for (const line of event.data.split('\n')) {
      const push = JSON.parse(line);
      if (push.type === 'message') {
        if (last[push.channel] !== undefined && push.offset !== last[push.channel] + 1) {
          gaps.add(1);
        }
        last[push.channel] = push.offset;
        delivered.add(1);
        latency.add(Date.now() - push.data.ts);
      } else if (push.type === 'ping') {
        ws.send('{"op":"pong"}');
      }
    }
  };
  // Stay subscribed for the publisher's whole run plus a tail.
  setTimeout(() => ws.close(), (parseInt(DURATION, 10) + 10) * 1000);
}

export function publish() {
  const channel = `load${Math.floor(Math.random() * CHANNELS)}`;
  const body = JSON.stringify({ data: { ts: Date.now(), pad: 'x'.repeat(PAYLOAD_BYTES) } });
  const response = http.post(`${PUBLISH_URL}/api/v1/channels/${channel}/messages`, body, { headers: publishHeaders() });
  check(response, { 'published': (r) => r.status === 200 });
}
