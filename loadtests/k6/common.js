// Shared settings of the PushService k6 scripts, all overridable with -e NAME=value.
export const WS_URLS = (__ENV.WS_URLS || 'ws://127.0.0.1:5000/ws').split(',');
export const PUBLISH_URL = __ENV.PUBLISH_URL || 'http://127.0.0.1:5000';
export const API_KEY = __ENV.API_KEY || '';
export const CHANNELS = parseInt(__ENV.CHANNELS || '10', 10);
export const CHANNELS_PER_CONNECTION = parseInt(__ENV.CHANNELS_PER_CONNECTION || '1', 10);
export const CONNECTIONS = parseInt(__ENV.CONNECTIONS || '100', 10);
export const RATE = parseInt(__ENV.RATE || '100', 10);
export const DURATION = __ENV.DURATION || '30s';
export const PAYLOAD_BYTES = parseInt(__ENV.PAYLOAD_BYTES || '64', 10);

export function channelsOf(index) {
  const channels = [];
  for (let j = 0; j < CHANNELS_PER_CONNECTION; j++) {
    channels.push(`load${(index * CHANNELS_PER_CONNECTION + j) % CHANNELS}`);
  }
  return channels;
}

export function publishHeaders() {
  const headers = { 'Content-Type': 'application/json' };
  if (API_KEY) {
    headers.Authorization = `Bearer ${API_KEY}`;
  }
  return headers;
}
