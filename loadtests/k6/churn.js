// Churn: RATE new connections per second, each connects, subscribes and leaves.
//   k6 run -e WS_URLS=ws://a/ws,ws://b/ws -e RATE=200 -e DURATION=30s loadtests/k6/churn.js
import { WebSocket } from 'k6/websockets';
import { Counter, Trend } from 'k6/metrics';
import { WS_URLS, RATE, DURATION, channelsOf } from './common.js';

const subscribeTime = new Trend('push_subscribe_ms', true);
const completed = new Counter('push_churn_completed');

export const options = {
  scenarios: { churn: { executor: 'constant-arrival-rate', rate: RATE, timeUnit: '1s', duration: DURATION, preAllocatedVUs: 100 } },
  thresholds: { push_subscribe_ms: ['p(99)<200'] },
};

export default function () {
  const started = Date.now();
  const ws = new WebSocket(WS_URLS[__ITER % WS_URLS.length]);
  ws.onopen = () => {
    ws.send('{"op":"connect","id":1}');
    ws.send(JSON.stringify({ op: 'subscribe', id: 2, channel: channelsOf(__ITER)[0] }));
  };
  ws.onmessage = (event) => {
    for (const line of event.data.split('\n')) {
      const push = JSON.parse(line);
      if (push.id === 2) {
        subscribeTime.add(Date.now() - started);
        completed.add(1);
        ws.close();
      }
    }
  };
}
