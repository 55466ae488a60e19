/**
 * Invariant: the shipped dashboard and alert rules watch metrics this code exports. Every metric name in
 * deploy/grafana-dashboard.json and deploy/prometheus-alerts.yml exists in a node's registry (a renamed or removed
 * family fails here, not silently in Grafana), and the rules are valid Prometheus rules that fire when they should
 * (`promtool check rules` and `promtool test rules` when promtool is installed: Debian package `prometheus`).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { createMetrics } from '../src/metrics/index.ts';

const root = path.resolve(import.meta.dirname, '..');
const DASHBOARD = path.join(root, 'deploy/grafana-dashboard.json');
const RULES = path.join(root, 'deploy/prometheus-alerts.yml');

/** Every sample name a node's registry can expose (histograms and summaries with their suffixes). */
async function exportedNames(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const m of await createMetrics().registry.getMetricsAsJSON()) {
    names.add(m.name);
    const type = String(m.type);
    if (type === 'histogram') for (const s of ['_bucket', '_count', '_sum']) names.add(m.name + s);
    if (type === 'summary') for (const s of ['_count', '_sum']) names.add(m.name + s);
  }
  return names;
}

const PROMQL_WORDS = new Set(
  'and or unless by without on ignoring group_left group_right bool offset inf nan le'.split(' ').concat(['e']),
);

/** The metric names a PromQL expression selects (label matchers, label lists, strings, ranges and functions removed). */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ');
  const out: string[] = [];
  for (const m of bare.matchAll(/(?<![\w.])([a-zA-Z_:][\w:]*)(\s*\()?/g)) {
    if (m[2]) continue; // a function or aggregation
    if (PROMQL_WORDS.has(m[1]!)) continue;
    out.push(m[1]!);
  }
  return out;
}

interface Panel {
  type: string;
  title: string;
  gridPos?: unknown;
  targets?: { expr?: string }[];
  panels?: Panel[];
}

const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; query?: unknown }[] };
};
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const dashboardExprs = [
  ...panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? '')),
  ...dashboard.templating.list.flatMap((v) => {
    const q = typeof v.query === 'object' && v.query ? (v.query as { query?: string }).query : undefined;
    const m = /^label_values\((.*),\s*\w+\)$/.exec(q ?? '');
    return m ? [m[1]!] : [];
  }),
];

/** A rule of the alert file, read with a small reader for the shape this file has (no YAML parser is a dependency). */
interface Rule {
  alert: string;
  expr: string;
  fields: Set<string>;
}

function readRules(text: string): Rule[] {
  const rules: Rule[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = /^(\s*)- alert: (\S+)\s*$/.exec(lines[i]!);
    if (!start) continue;
    const indent = start[1]!.length + 2;
    const rule: Rule = { alert: start[2]!, expr: '', fields: new Set(['alert']) };
    let parent = 'alert';
    for (i++; i < lines.length; i++) {
      const line = lines[i]!;
      if (line.trim() === '' || line.trim().startsWith('#')) continue;
      const lead = line.length - line.trimStart().length;
      if (lead < indent) break;
      const field = /^\s*(\w+):\s*(.*)$/.exec(line);
      if (lead === indent && field) {
        parent = field[1]!;
        rule.fields.add(parent);
        if (field[1] === 'expr') {
          // One line, or a block (| or >-) of more deeply indented lines.
          let expr = /^[|>]-?$/.test(field[2]!) ? '' : field[2]!;
          while (i + 1 < lines.length && lines[i + 1]!.length - lines[i + 1]!.trimStart().length > indent) {
            expr += ` ${lines[++i]!.trim()}`;
          }
          rule.expr = expr.trim();
        }
      } else if (lead === indent + 2 && field) rule.fields.add(`${parent}.${field[1]}`);
    }
    i--;
    rules.push(rule);
  }
  return rules;
}

const rulesText = readFileSync(RULES, 'utf8');
const rules = readRules(rulesText);

const promtool = (() => {
  const r = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  return r.status === 0;
})();

describe('monitoring files', () => {
  it('the expression reader finds metric names and only them', () => {
    assert.deepEqual(
      metricNames(
        'histogram_quantile(0.99, sum by (le, route) (rate(http_server_request_duration_seconds_bucket{route=~"a|b", job=~"$job"}[5m]))) > 0.5',
      ),
      ['http_server_request_duration_seconds_bucket'],
    );
    assert.deepEqual(
      metricNames('max(a_x{state="active"}) > 91 * 86400 unless on () count(b_y{state="staged"}) > 0 and time() - c'),
      ['a_x', 'b_y', 'c'],
    );
  });

  it('the dashboard has the panels operators need, each with a query', () => {
    assert.equal(dashboard.uid, 'dinhdanh-overview');
    for (const p of panels.filter((x) => x.type !== 'row')) {
      assert.ok(p.gridPos, `${p.title} has a position`);
      assert.ok(p.targets?.length && p.targets.every((t) => t.expr), `${p.title} has queries`);
    }
    const used = new Set(dashboardExprs.flatMap(metricNames));
    for (const name of [
      'http_server_request_duration_seconds_bucket',
      'http_server_request_duration_seconds_count',
      'dinhdanh_logins_total',
      'dinhdanh_tokens_issued_total',
      'dinhdanh_step_up_total',
      'dinhdanh_backchannel_queue_depth',
      'dinhdanh_backchannel_oldest_age_seconds',
      'dinhdanh_backchannel_deliveries_total',
      'dinhdanh_audit_batch_lag_seconds',
      'dinhdanh_db_pool_total',
      'dinhdanh_db_pool_idle',
      'dinhdanh_db_pool_waiting',
      'dinhdanh_signing_key_age_seconds',
      'nodejs_eventloop_lag_p99_seconds',
      'nodejs_heap_size_used_bytes',
      'dinhdanh_build_info',
    ]) {
      assert.ok(used.has(name), `a panel shows ${name}`);
    }
  });

  it('every metric the dashboard and the rules use is exported by a node', async () => {
    const exported = await exportedNames();
    const used = [...dashboardExprs, ...rules.map((r) => r.expr)].flatMap(metricNames);
    assert.ok(used.length > 30);
    const unknown = [...new Set(used)].filter((n) => !exported.has(n));
    assert.deepEqual(unknown, [], 'names not in src/metrics (renamed or removed?)');
  });

  it('each alert rule has an expression, a duration, a severity and a summary', () => {
    assert.ok(rules.length >= 8);
    for (const name of [
      'DinhdanhLoginFailureRatioHigh',
      'DinhdanhLatencyP99High',
      'DinhdanhBackchannelBacklogGrowing',
      'DinhdanhBackchannelOldestTooOld',
      'DinhdanhSigningKeyWithoutSuccessor',
      'DinhdanhAuditNotVerified',
      'DinhdanhReadinessFlapping',
    ]) {
      assert.ok(
        rules.some((r) => r.alert === name),
        `rule ${name}`,
      );
    }
    for (const r of rules) {
      assert.ok(r.expr, `${r.alert} has an expression`);
      for (const f of ['for', 'labels.severity', 'annotations.summary', 'annotations.description'])
        assert.ok(r.fields.has(f), `${r.alert} has ${f}`);
    }
    assert.equal(new Set(rules.map((r) => r.alert)).size, rules.length, 'alert names are unique');
  });

  it('promtool accepts the rules, and they fire when they should', {
    skip: !promtool && 'promtool not installed',
  }, () => {
    const check = spawnSync('promtool', ['check', 'rules', RULES], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stdout + check.stderr);
    assert.match(check.stdout, new RegExp(`SUCCESS: ${rules.length} rules found`));

    const dir = mkdtempSync(path.join(os.tmpdir(), 'dinhdanh-rules-'));
    try {
      const tests = path.join(dir, 'alerts.test.yml');
      writeFileSync(tests, RULE_TESTS.replace('RULES_FILE', JSON.stringify(RULES)));
      const r = spawnSync('promtool', ['test', 'rules', tests], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stdout + r.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * promtool unit tests: series over time in, the alerts expected at given times out. Among them: an active key past
 * its rotation with no staged key alerts, with one it does not; an audit chain verified more than a day ago alerts;
 * five readiness changes in 15 minutes alert, one does not.
 */
const RULE_TESTS = `
rule_files:
  - RULES_FILE
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'dinhdanh_signing_key_age_seconds{kid="old",state="active",instance="n1"}'
        values: '8000000x120'
    alert_rule_test:
      - eval_time: 90m
        alertname: DinhdanhSigningKeyWithoutSuccessor
        exp_alerts:
          - exp_labels: { severity: critical }
            exp_annotations:
              summary: The active signing key is 92d 14h 13m 20s old and has no staged successor
              description: "Stage one now: dinhdanh keys rotate (docs/operations.md, Key ceremony). Check the nodes' logs for the scheduled transitions."
  - interval: 1m
    input_series:
      - series: 'dinhdanh_signing_key_age_seconds{kid="old",state="active",instance="n1"}'
        values: '8000000x120'
      - series: 'dinhdanh_signing_key_age_seconds{kid="new",state="staged",instance="n1"}'
        values: '3600x120'
    alert_rule_test:
      - eval_time: 90m
        alertname: DinhdanhSigningKeyWithoutSuccessor
        exp_alerts: []
  - interval: 1m
    input_series:
      - series: 'dinhdanh_audit_last_verified_timestamp_seconds{instance="n1"}'
        values: '-80000x300'
    alert_rule_test:
      - eval_time: 150m
        alertname: DinhdanhAuditNotVerified
        exp_alerts: []
      - eval_time: 4h
        alertname: DinhdanhAuditNotVerified
        exp_alerts:
          - exp_labels: { severity: warning }
            exp_annotations:
              summary: The audit chain was last verified intact 1d 2h 13m 20s ago
              description: Run dinhdanh audit verify daily (a timer); a failed verification is recorded as audit.verified with outcome failure and does not reset this.
  - interval: 1m
    input_series:
      - series: 'dinhdanh_readiness_changes_total{instance="n1",status="ready"}'
        values: '1 1 2 2 3 3 4 4 5 5 6 6 7 7 8 8 9 9 10 10 11 11 12 12 13 13'
      - series: 'dinhdanh_readiness_changes_total{instance="n2",status="ready"}'
        values: '1x25'
    alert_rule_test:
      - eval_time: 25m
        alertname: DinhdanhReadinessFlapping
        exp_alerts:
          - exp_labels: { severity: warning, instance: n1 }
            exp_annotations:
              summary: n1 changed readiness 7 times in 15 minutes
              description: The load balancer takes it in and out of rotation. The status label says why (saturated, slow, unreachable, cannot_write).
`;
