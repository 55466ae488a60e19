/**
 * New-password rules, the same on every path (enrollment page, CLI, change, reset): blank or trimmed-to-short
 * passwords are refused with their own reason; spaces inside a passphrase count.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkNewPassword } from '../src/credentials/index.ts';

describe('new passwords', () => {
  it('refuses a password of spaces only', () => {
    assert.equal(checkNewPassword('        '), 'blank');
    assert.equal(checkNewPassword(' \t\n  \u00a0   '), 'blank');
  });

  it('counts the length without surrounding spaces', () => {
    assert.equal(checkNewPassword('   ab12   '), 'too_short');
    assert.equal(checkNewPassword('  sông Hồng chảy  '), null);
  });

  it('accepts a passphrase with spaces inside', () => {
    assert.equal(checkNewPassword('trăng sáng quê hương'), null);
  });
});
