#!/bin/sh
# Builds the freestanding test guest in both boot formats:
#   OUTDIR/vctest.bzImage  (Linux boot protocol, 64-bit entry)
#   OUTDIR/vctest.elf      (ELF vmlinux with a PVH entry note)
# Called by binding.gyp (target "testguests"); CC defaults to cc.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build.sh OUTDIR}
cc=${CC:-cc}
mkdir -p "$out/obj"
# -mgeneral-regs-only: the guest never enables SSE (CR4.OSFXSR stays 0), so the compiler must not
# use it. No red zone, no stack protector, no PIC: there is no OS underneath.
cflags="-std=gnu11 -O2 -Wall -Wextra -Werror -ffreestanding -fno-builtin -fno-pic -fno-pie -fno-stack-protector \
  -mgeneral-regs-only -mno-red-zone -fno-asynchronous-unwind-tables -fcf-protection=none -nostdinc \
  -isystem $($cc -print-file-name=include)"
objs=""
for src in entry.S main.c rt.c boot.c smp.c perf.c virtio.c vsock.c blk.c; do
  obj="$out/obj/${src%.*}.o"
  $cc $cflags -c "$here/$src" -o "$obj"
  objs="$objs $obj"
done
ld -nostdlib -static -no-pie --build-id=none -z noexecstack -z max-page-size=4096 --no-warn-rwx-segments \
  -T "$here/bzimage.ld" -o "$out/obj/vctest-bz.elf" $objs
objcopy -O binary "$out/obj/vctest-bz.elf" "$out/vctest.bzImage"
ld -nostdlib -static -no-pie --build-id=none -z noexecstack -z max-page-size=4096 --no-warn-rwx-segments \
  -T "$here/pvh.ld" -o "$out/vctest.elf" $objs
