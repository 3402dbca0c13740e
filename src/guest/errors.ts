// The one error class of src/guest, a VcError. Callers branch on `code` (stable strings, listed below), never
// on message text; `cause` keeps the underlying error (an fs error, a failed child process, ...).
//
// Codes:
//   INVALID_OPTION       a path or value the caller gave is unusable (the message names the option)
//   KERNEL_UNAVAILABLE   no kernel given and Debian's cloud kernel cannot be fetched
//   KERNEL_PACKAGE_INVALID the installed @virtcontainers/guest-kernel-linux-x64 is incomplete or
//                        corrupt (a file missing, truncated or with another sha256; bad manifest)
//   BUSYBOX_UNAVAILABLE  no static busybox on the host and busybox-static cannot be fetched
//   ELF_INVALID          a file that should be ELF (module, busybox) is truncated or garbage
//   MODULE_NOT_FOUND     a wanted module or a dependency is neither a .ko file nor built in
//   MODULE_CYCLE         module dependencies form a cycle
//   MODULE_MISMATCH      a .ko file names another module, or was built for another kernel release
//   MODULE_UNSUPPORTED   a module exists only compressed (.ko.xz/.ko.zst/.ko.gz)
//   CPIO_INVALID         an archive entry is not representable (bad name, duplicate, too large...)
//   CACHE_WRITE_FAILED   writing into the cache failed (nothing half-written is left behind)
//   CACHE_UNSAFE         the cache directory is another user's, or a group or everyone may write it
//   IMAGE_NOT_FOUND      an image source does not exist, or names no image (unknown tag; several
//                        images and no tag given: the message lists the tags)
//   IMAGE_INVALID        an image is malformed: bad JSON or field, missing blob, bad or truncated tar
//   IMAGE_DIGEST_MISMATCH a blob's sha256 or size differs from its descriptor or the config's diff_ids
//   IMAGE_UNSAFE         a layer entry would reach outside the image root (absolute path, '..',
//                        a symlink in a parent path, a hardlink to outside)
//   IMAGE_UNSUPPORTED    well-formed but not handled: zstd/xz/bzip2 layers, unknown tar entry types,
//                        pre-1.10 `docker save` archives, non-sha256 digests
//   IMAGE_BUILD_FAILED   mkfs.erofs (or mkfifo) is missing or failed
import { VcError, type GuestErrorCode } from '../errors.js';

export class GuestError extends VcError {
  declare readonly code: GuestErrorCode;

  constructor(code: GuestErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'GuestError';
  }
}
