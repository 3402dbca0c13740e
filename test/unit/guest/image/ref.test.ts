import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GuestError } from '../../../../src/guest/errors.js';
import { parseImageRef } from '../../../../src/guest/image/index.js';

test('oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF], split at the first colon as skopeo does', () => {
  assert.equal(parseImageRef('oci:/images/alpine'), { kind: 'oci', path: '/images/alpine' });
  assert.equal(parseImageRef('oci:./layout:v1.2'), { kind: 'oci', path: './layout', tag: 'v1.2' });
  assert.equal(parseImageRef('oci-archive:img.tar'), { kind: 'oci-archive', path: 'img.tar' });
  assert.equal(parseImageRef('oci-archive:img.tar:latest'), { kind: 'oci-archive', path: 'img.tar', tag: 'latest' });
  assert.equal(parseImageRef('docker-archive:/x/busybox.tar'), { kind: 'docker-archive', path: '/x/busybox.tar' });
  assert.equal(parseImageRef('docker-archive:b.tar:busybox:1.36'), { kind: 'docker-archive', path: 'b.tar', tag: 'busybox:1.36' });
});

test('unknown transports, empty paths and tags are INVALID_OPTION naming the ref', () => {
  const codeAndMessage = (ref: string) => {
    try {
      parseImageRef(ref);
    } catch (err) {
      assert.instance(err, GuestError);
      return `${(err as GuestError).code} ${(err as Error).message}`;
    }
    return 'no error';
  };
  assert.match(codeAndMessage('tarball:x.tar'), /^INVALID_OPTION image "tarball:x.tar": unknown transport "tarball"/);
  assert.match(codeAndMessage('/just/a/path'), /^INVALID_OPTION image "\/just\/a\/path": unknown transport ""/);
  assert.match(codeAndMessage('docker://busybox'), /registries are not contacted: copy the image first/);
  assert.match(codeAndMessage('oci:'), /INVALID_OPTION image "oci:": no path/);
  assert.match(codeAndMessage('oci:dir:'), /INVALID_OPTION image "oci:dir:": empty tag/);
});

test.run();
