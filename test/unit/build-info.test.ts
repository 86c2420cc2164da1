// What /health/live and st_api_build_info say the node runs.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readBuildInfo } from '../../api/build-info.ts';

describe('build info', () => {
  it("when the module sits in dist/api/ below the package (the image), then the version is the package's", () => {
    const root = mkdtempSync(join(tmpdir(), 'st-build-info-'));
    try {
      writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'st-api', version: '1.2.3' }));
      mkdirSync(join(root, 'dist', 'api'), { recursive: true });
      // Another package.json on the way up is not ours.
      writeFileSync(join(root, 'dist', 'package.json'), JSON.stringify({ type: 'module' }));
      assert.deepEqual(readBuildInfo({ ST_API_COMMIT: 'abc1234' }, join(root, 'dist', 'api')), {
        version: '1.2.3',
        commit: 'abc1234',
        node: process.version,
      });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('when a release carries a COMMIT file beside package.json, then it names the commit, and ST_API_COMMIT still wins', () => {
    const root = mkdtempSync(join(tmpdir(), 'st-build-info-'));
    try {
      writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'st-api', version: '1.2.3' }));
      writeFileSync(join(root, 'COMMIT'), 'e2ae3f9c1d0b\n');
      mkdirSync(join(root, 'dist', 'api'), { recursive: true });
      assert.equal(readBuildInfo({}, join(root, 'dist', 'api')).commit, 'e2ae3f9c1d0b');
      assert.equal(readBuildInfo({ ST_API_COMMIT: 'feedc0de' }, join(root, 'dist', 'api')).commit, 'feedc0de');
      writeFileSync(join(root, 'COMMIT'), 'not a commit\n');
      assert.equal(readBuildInfo({}, join(root, 'dist', 'api')).commit, 'unknown');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('when no commit is given, or one that is not a plain token, then it reads unknown (nothing odd reaches a label or a line)', () => {
    assert.equal(readBuildInfo({}).commit, 'unknown');
    for (const commit of ['', 'a b', 'abc\nok version=9', 'x'.repeat(65), 'c"}'])
      assert.equal(readBuildInfo({ ST_API_COMMIT: commit }).commit, 'unknown');
  });

  it('when no package.json named st-api is found, then the version reads unknown', () => {
    const lonely = mkdtempSync(join(tmpdir(), 'st-build-info-'));
    try {
      assert.equal(readBuildInfo({}, join(lonely, 'a', 'b')).version, 'unknown');
    } finally {
      rmSync(lonely, { recursive: true, force: true });
    }
  });
});
