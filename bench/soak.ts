/**
 * `npm run soak [-- --minutes 30 --workers 6]`: one dinhdanh process under a steady mixed load (logins with code
 * exchange, refreshes, client_credentials grants) for a long time; every minute it prints the node's resident memory
 * (RSS, from /proc) and the operations' p50/p99 in that minute, so a leak shows as a curve that does not flatten.
 * Uses TEST_DATABASE_URL when set (a database is created and dropped), else the embedded test server. Loopback only.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { addClient } from '../src/clients/index.ts';
import { connect } from '../src/db/index.ts';
import { freshDatabase } from '../test/helpers/db.ts';
import { type LoadTarget, startLoad } from '../test/helpers/load.ts';
import { freePort, startNode } from '../test/helpers/process.ts';
import { testEnv } from '../test/helpers/service.ts';

const { values: args } = parseArgs({
  options: { minutes: { type: 'string', default: '30' }, workers: { type: 'string', default: '6' } },
});
const minutes = Number(args.minutes);
const REDIRECT = 'http://localhost:4703/cb';

const database = await freshDatabase();
const port = await freePort();
const node = await startNode(
  testEnv(database.url, {
    PORT: String(port),
    ISSUER: `http://localhost:${port}`,
    LOG_LEVEL: 'warn',
    // The production cost, so memory and time per login are what a real node sees.
    ARGON2_MEMORY_KIB: '19456',
    ARGON2_TIME_COST: '2',
    LOGIN_MAX_FAILURES: '100',
    LOGIN_IP_FAILURES: '1000000',
  }),
);
const db = connect(database.url, 1);
const portal = await addClient(db, { name: 'Cổng thử nghiệm', redirectUris: [REDIRECT] });
const service = await addClient(db, { name: 'Dịch vụ nền', redirectUris: [], clientCredentials: true });
await db.destroy();
const target: LoadTarget = {
  issuer: `http://localhost:${port}`,
  nodes: [],
  portal: { clientId: portal.client_id, secret: portal.client_secret!, redirectUri: REDIRECT },
  service: { clientId: service.client_id, secret: service.client_secret! },
};

const rss = () => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${node.child.pid}/status`, 'utf8'));
  return Math.round(Number(m?.[1] ?? 0) / 1024);
};
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : 0;
};

const load = startLoad(target, { workers: Number(args.workers) });
process.stdout.write(`| minute | RSS MB | operations | failed | p50 ms | p99 ms |\n|---|---|---|---|---|---|\n`);
process.stdout.write(`| 0 | ${rss()} | 0 | 0 | | |\n`);
let from = Date.now();
for (let m = 1; m <= minutes; m++) {
  await new Promise((r) => setTimeout(r, 60_000)); // one sample a minute
  const to = Date.now();
  const window = load.tally.outcomes.filter((o) => o.at >= from && o.at < to);
  const failed = window.filter((o) => o.result !== 'ok').length;
  const ms = window.filter((o) => o.result === 'ok').map((o) => o.ms);
  process.stdout.write(`| ${m} | ${rss()} | ${window.length} | ${failed} | ${pct(ms, 50)} | ${pct(ms, 99)} |\n`);
  // Keep the tally small: a long soak must not measure the load generator's own memory.
  load.tally.outcomes.splice(0, load.tally.outcomes.length);
  load.tally.issued.splice(0, load.tally.issued.length);
  from = to;
}
await load.stop();
await node.stop();
await database.drop();
