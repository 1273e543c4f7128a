// A lean keep-alive POST of one message (or a batch) to a crs ingest, answering the status: the benches' device
// side, kept cheap so that it costs the shared 2-core machine little.
import { request, type Agent } from 'node:http';
import type { DeviceMessage } from '#domain/contract.ts';

export function postMessages(
  url: string,
  agent: Agent,
  token: string,
  body: DeviceMessage | DeviceMessage[],
): Promise<number> {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(`${url}${Array.isArray(body) ? '/v1/messages/batch' : '/v1/messages'}`, {
      method: 'POST',
      agent,
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(data),
      },
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(data);
  });
}
