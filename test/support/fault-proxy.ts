// A fault-injecting proxy in front of an AWS endpoint: every request goes through unchanged, except that while
// an outage of a service is on, that service's requests (told apart by the SigV4 credential scope) are answered
// 503 ServiceUnavailable, as AWS answers when a service is down, and that a `refuse` hook can answer a request
// 400 for what it carries, as AWS refuses a bad parameter. The SDK's own retries, then the notifier's stream
// retries, meet a real outage this way.
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FaultProxy {
  url: string;
  /** Services currently refused (e.g. "sns"). */
  down: Set<string>;
  /**
   * Requests refused for what they carry, as AWS refuses a bad parameter: given the service and the (form-encoded)
   * body, an error code to answer 400 with (e.g. "InvalidParameter"), or undefined to pass it on.
   */
  refuse?: (service: string, body: URLSearchParams) => string | undefined;
  /** Requests refused per service. */
  refused: Map<string, number>;
  close(): Promise<void>;
}

const serviceOf = (authorization: string | undefined) =>
  authorization?.match(/Credential=[^/]+\/\d{8}\/[^/]+\/([^/]+)\/aws4_request/)?.[1];

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target);
  const down = new Set<string>();
  const refused = new Map<string, number>();
  const proxy: Partial<FaultProxy> = {};
  const server: Server = createServer((req, res) => {
    const service = serviceOf(req.headers.authorization);
    if (service && down.has(service)) {
      refused.set(service, (refused.get(service) ?? 0) + 1);
      req.resume();
      res.writeHead(503, { 'content-type': 'text/xml' });
      res.end(
        `<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code><Message>injected outage</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>`,
      );
      return;
    }
    if (service && proxy.refuse) {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const code = proxy.refuse?.(service, new URLSearchParams(body.toString('utf8')));
        if (code) {
          refused.set(`${service}:${code}`, (refused.get(`${service}:${code}`) ?? 0) + 1);
          res.writeHead(400, { 'content-type': 'text/xml' });
          res.end(
            `<ErrorResponse><Error><Type>Sender</Type><Code>${code}</Code><Message>injected refusal</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>`,
          );
          return;
        }
        pass(body);
      });
      return;
    }
    pass();

    function pass(buffered?: Buffer) {
      const forward = request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      forward.on('error', () => {
        if (!res.headersSent) res.writeHead(502);
        res.end();
      });
      if (buffered) forward.end(buffered);
      else req.pipe(forward);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return Object.assign(proxy, {
    url: `http://127.0.0.1:${port}`,
    down,
    refused,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  }) as FaultProxy;
}
