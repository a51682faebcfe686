// The Socket.IO peer: the same job as PushService and the SignalR peer (a client joins a room per channel; a REST call
// emits to the room), scaled out with Socket.IO's Redis adapter, so the load generator measures all three in one run.
// Usage: PORT=5000 REDIS_URL=redis://127.0.0.1:6379 node server.js
'use strict';

const http = require('node:http');
const { createClient } = require('redis');
const { Server } = require('socket.io');
const { createAdapter } = require('@socket.io/redis-adapter');

const port = Number(process.env.PORT || 3000);
const host = process.env.HOST || '127.0.0.1';
const redisUrl = process.env.REDIS_URL;
const channelPattern = /^\/publish\/([A-Za-z0-9_.:-]{1,128})$/;

const httpServer = http.createServer((request, response) => {
  if (request.method === 'GET' && request.url === '/healthz') {
    response.end('ok');
    return;
  }

  const match = request.method === 'POST' ? channelPattern.exec(request.url) : null;
  if (!match) {
    response.writeHead(404).end();
    return;
  }

  const chunks = [];
  request.on('data', (chunk) => chunks.push(chunk));
  request.on('end', () => {
    // The payload is passed on as the string it came as, as the SignalR peer does.
    io.to(match[1]).emit('message', match[1], Buffer.concat(chunks).toString('utf8'));
    response.writeHead(200).end();
  });
});

// WebSocket only, as the other servers are measured: no HTTP long-polling handshake before the upgrade.
const io = new Server(httpServer, { transports: ['websocket'], serveClient: false });

io.on('connection', (socket) => {
  socket.on('join', (channel, ack) => {
    socket.join(String(channel));
    if (typeof ack === 'function') {
      ack();
    }
  });
});

async function main() {
  if (redisUrl) {
    const pubClient = createClient({ url: redisUrl });
    const subClient = pubClient.duplicate();
    await Promise.all([pubClient.connect(), subClient.connect()]);
    io.adapter(createAdapter(pubClient, subClient));
  }

  httpServer.listen(port, host);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
