// The detail of a protocol or quality refusal says what is possible instead: named fixtures for each case.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ladder } from '../../api/catalog/dataset.ts';
import type { Content, DeviceClass } from '../../api/catalog/types.ts';
import { protocolNotAvailableDetail, protocolNotSupportedDetail, qualityNotAvailableDetail } from '../../api/playback/refusal-detail.ts';

const phone: DeviceClass = { name: 'phone', maxHeight: 720, protocols: ['hls'], defaultProtocol: 'hls', enabled: true };
const tv: DeviceClass = { name: 'tv', maxHeight: 2160, protocols: ['dash', 'hls'], defaultProtocol: 'dash', enabled: true };
const hdOnly: Content = { id: 'tt-hd', title: 'HD only', renditions: ladder('tt-hd', ['hls', 'dash'], [2160, 1080]) };
const dashOnly: Content = { id: 'tt-dash', title: 'DASH only', renditions: ladder('tt-dash', ['dash'], [1080, 480]) };

describe('protocol refusals', () => {
  it('when the device does not play the protocol asked for, then the detail lists what it plays', () => {
    assert.equal(protocolNotSupportedDetail('dash', phone), 'Device class "phone" plays hls, not dash; ask for hls, or leave protocol out');
  });
  it('when the content is not packaged in a protocol the device plays, then the detail says how it is packaged', () => {
    assert.equal(
      protocolNotAvailableDetail(undefined, phone, dashOnly),
      '"tt-dash" is packaged in dash only, and device class "phone" plays hls',
    );
    assert.equal(protocolNotAvailableDetail('hls', tv, dashOnly), '"tt-dash" is packaged in dash only, and hls was asked for');
  });
});

describe('quality refusals', () => {
  it('when only the request ceiling is too low, then the detail names the best quality the viewer may get', () => {
    assert.equal(
      qualityNotAvailableDetail(hdOnly, 'hls', tv, { requested: 720, rights: 2160, device: 2160 }),
      'Nothing of "tt-hd" in hls is at or under the requested 720p; the best this viewer may get is 2160p: ask for 2160p or auto',
    );
    assert.match(
      qualityNotAvailableDetail(hdOnly, 'hls', tv, { requested: 720, rights: 1080, device: 2160 }),
      /best this viewer may get is 1080p/,
    );
  });
  it("when the viewer's rights stop below the lowest rendition, then the detail says so and names that rendition", () => {
    assert.equal(
      qualityNotAvailableDetail(hdOnly, 'dash', tv, { requested: Number.POSITIVE_INFINITY, rights: 480, device: 2160 }),
      `No quality of "tt-hd" can be played: the viewer's rights allow up to 480p, and its lowest dash rendition is 1080p`,
    );
  });
  it('when the device class stops below the lowest rendition, then the detail names the device class; both when both do', () => {
    assert.equal(
      qualityNotAvailableDetail(hdOnly, 'hls', phone, { requested: Number.POSITIVE_INFINITY, rights: 2160, device: 720 }),
      'No quality of "tt-hd" can be played: device class "phone" plays up to 720p, and its lowest hls rendition is 1080p',
    );
    assert.equal(
      qualityNotAvailableDetail(hdOnly, 'hls', phone, { requested: 480, rights: 480, device: 720 }),
      `No quality of "tt-hd" can be played: the viewer's rights allow up to 480p and device class "phone" plays up to 720p, and its lowest hls rendition is 1080p`,
    );
  });
});
