import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeFailure } from '../../api/health/deep-health.ts';

describe('describeFailure (what a probe failure says in the Consul UI)', () => {
  it('when the error has a system code, then the code is shown in lower case', () => {
    assert.equal(
      describeFailure(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' })),
      'error(econnrefused)',
    );
  });
  it('when ioredis gives up on a command, then it says timeout, not a bare error', () => {
    assert.equal(describeFailure(new Error('Command timed out')), 'timeout(command)');
  });
  it('when the error says anything else, then no message text reaches the check output', () => {
    assert.equal(describeFailure(new Error('password=hunter2 in SELECT …')), 'error');
    assert.equal(describeFailure('a string'), 'error');
  });
});
