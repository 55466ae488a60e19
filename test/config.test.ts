/** Configuration: every invalid variable is reported on its own line, naming the variable; defaults are documented. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ConfigError, describeConfig, loadConfig } from '../src/config/index.ts';

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
  assert.fail('expected a ConfigError');
}

describe('configuration', () => {
  it('has working defaults', () => {
    const c = loadConfig({});
    assert.equal(c.port, 3000);
    assert.equal(c.issuer, 'http://localhost:3000');
    assert.equal(c.databaseUrl, null);
    assert.deepEqual(c.argon2, { memoryCost: 19456, timeCost: 2, parallelism: 1 });
    assert.equal(c.trustProxy, false);
  });

  for (const [name, value, pattern] of [
    ['PORT', 'abc', /^PORT: must be a whole number between 0 and 65535 \(got "abc"\)$/],
    ['PORT', '70000', /^PORT: must be at most 65535/],
    ['ISSUER', 'ftp://x', /^ISSUER: must be an http\(s\) URL/],
    ['ISSUER', 'https://id.example.vn/?a=1', /^ISSUER: must have no query or fragment/],
    ['DATABASE_URL', 'mysql://x', /^DATABASE_URL: must be a postgres:\/\/ URL$/],
    ['LOG_LEVEL', 'loud', /^LOG_LEVEL: /],
    ['TRUST_PROXY', 'maybe', /^TRUST_PROXY: /],
    ['ARGON2_MEMORY_KIB', '-1', /^ARGON2_MEMORY_KIB: must be a whole number/],
    ['MASTER_KEY', 'c2hvcnQ=', /^MASTER_KEY: must be 32 bytes encoded in base64$/],
    ['COOKIE_KEYS', 'short', /^COOKIE_KEYS: every key must be at least 32 characters$/],
    ['DEMO_SEED', 'sometimes', /^DEMO_SEED: /],
  ] as const) {
    it(`rejects ${name}=${value} with one line naming it`, () => {
      const p = problems({ [name]: value });
      assert.equal(p.length, 1);
      assert.match(p[0]!, pattern);
    });
  }

  it('never echoes a secret value', () => {
    const p = problems({ MASTER_KEY: 'not-a-real-secret-value' });
    assert.doesNotMatch(p[0]!, /not-a-real-secret-value/);
  });

  it('reports every problem at once', () => {
    assert.equal(problems({ PORT: 'x', LOG_LEVEL: 'y', TRUST_PROXY: 'z' }).length, 3);
  });

  it('refuses development shortcuts in production', () => {
    const p = problems({ NODE_ENV: 'production', ISSUER: 'http://id.example.vn' });
    assert.ok(p.some((l) => l.startsWith('ISSUER: must be an https URL')));
    assert.ok(p.some((l) => l.startsWith('DATABASE_URL: must be set')));
    assert.ok(p.some((l) => l.startsWith('SMS_GATEWAY_URL: must be set')));
  });

  it('is documented in the README table with each default', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    for (const f of describeConfig()) {
      const row = readme.split('\n').find((l) => l.startsWith(`| \`${f.name}\` |`));
      assert.ok(row, `${f.name} is in the README table`);
      if (f.default) assert.ok(row.includes(`\`${f.default}\``), `${f.name} default ${f.default} in README`);
    }
  });
});

describe('the process', () => {
  it('exits 1 with one line per bad variable, before listening', async () => {
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync(process.execPath, ['src/cli/main.ts', 'start'], {
      cwd: new URL('..', import.meta.url),
      env: { ...process.env, PORT: 'nope', LOG_LEVEL: 'loud' },
      encoding: 'utf8',
    });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /PORT: must be a whole number/);
    assert.match(r.stderr, /LOG_LEVEL: /);
    assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/, 'no stack trace');
  });
});
