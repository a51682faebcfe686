// Idle: hold CONNECTIONS subscribed WebSockets for DURATION; watch the gateways' memory meanwhile (RSS, /metrics).
//   k6 run -e WS_URLS=ws://a/ws -e CONNECTIONS=5000 -e DURATION=60s loadtests/k6/idle.js
import { WebSocket } from 'k6/websockets';
import { Counter } from 'k6/metrics';
import { WS_URLS, CONNECTIONS, DURATION, channelsOf } from './common.js';

const subscribed = new Counter('push_subscribed');

export const options = {
  scenarios: { idle: { executor: 'per-vu-iterations', vus: CONNECTIONS, iterations: 1, maxDuration: '30m' } },
  thresholds: { push_subscribed: [`count>=${CONNECTIONS}`] },
};

export default function () {
  const index = __VU - 1;
  const ws = new WebSocket(WS_URLS[index % WS_URLS.length]);
  ws.onopen = () => {
    ws.send('{"op":"connect","id":1}');
    ws.send(JSON.stringify({ op: 'subscribe', id: 2, channel: channelsOf(index)[0] }));
  };
  ws.onmessage = (event) => {
    for (const line of event.data.split('\n')) {
      const push = JSON.parse(line);
      if (push.id === 2 && push.result) {
        subscribed.add(1);
      } else if (push.type === 'ping') {
        ws.send('{"op":"pong"}');
      }
    }
  };
  setTimeout(() => ws.close(), parseInt(DURATION, 10) * 1000);
}
