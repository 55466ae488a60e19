/**
 * The ceiling for pre-serialized documents: Node's own http server answering every request with one fixed buffer
 * and the same headers dinhdanh sends (read from a JSON file written by bench/run.ts). No routing, no logging, no
 * framework: what Node itself costs per request on this machine. Prints "listening <url>" when ready.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const docs = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as Record<
  string,
  { body: string; headers: Record<string, string> }
>;
const ready = new Map(
  Object.entries(docs).map(([path, d]) => {
    const body = Buffer.from(d.body);
    // A flat [name, value, ...] list: node's cheapest header form.
    return [path, { body, headers: Object.entries({ ...d.headers, 'content-length': String(body.length) }).flat() }];
  }),
);
const server = createServer((req, res) => {
  const doc = ready.get(req.url ?? '');
  if (!doc) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, doc.headers);
  res.end(doc.body);
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening http://127.0.0.1:${(server.address() as AddressInfo).port}\n`);
});
