// virtio-blk over a temporary raw image: reads, writes, flush, device ID, bounds, read-only
// slots and backends, attach/detach at run time, and virtio-rng.
#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "backends/blk_file.h"
#include "devices/interrupt.h"
#include "devices/virtio/blk.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/rng.h"
#include "tests/check.h"
#include "tests/virtio_driver.h"

using namespace vmm::virtio;
using vmm::CountingInterrupt;
using vmm::FileBlockBackend;
using vmm::test::kModernRing;
using vmm::test::MmioDriver;
using vmm::test::TestRam;
using vmm::test::TestRing;

namespace {

constexpr uint64_t kHdr = 0x40000, kData = 0x41000, kStatus = 0x50000;

// A 64 KiB image whose sector s is filled with the byte s.
std::string make_image() {
  char path[] = "/tmp/vc-blk-test-XXXXXX";
  int fd = mkstemp(path);
  for (int s = 0; s < 128; s++) {
    uint8_t sector[512];
    std::memset(sector, s, sizeof(sector));
    if (write(fd, sector, sizeof(sector)) != 512) break;
  }
  close(fd);
  return path;
}

struct Fixture {
  explicit Fixture(bool ro_slot = false, bool ro_file = false, bool attach_now = true)
      : dev(ro_slot), t(ram.mem, &dev, &irq), d(&t), ring(&ram, 0x10000, 16) {
    image = make_image();
    if (attach_now) attach(ro_file);
    CHECK(d.negotiate(kModernRing | kBlkFFlush | kBlkFSegMax | kBlkFBlkSize | (ro_slot ? kBlkFRo : 0)));
    d.setup_queue(0, ring);
    d.driver_ok();
  }
  ~Fixture() { unlink(image.c_str()); }
  void attach(bool ro_file, const std::string& serial = "vc-disk-1") {
    std::string error;
    auto backend = FileBlockBackend::open(image, ro_file, &error);
    CHECK(backend != nullptr);
    CHECK(dev.attach(std::move(backend), serial, &error));
  }
  // Submits header + one data buffer (device-writable for reads) + status; returns the status.
  uint8_t request(uint32_t type, uint64_t sector, uint32_t len, bool data_writable) {
    ram.put<uint32_t>(kHdr, type);
    ram.put<uint32_t>(kHdr + 4, 0);
    ram.put<uint64_t>(kHdr + 8, sector);
    ram.put<uint8_t>(kStatus, 0xee);
    uint16_t next = 1;
    ring.set_desc(0, kHdr, 16, kDescFNext, 1);
    if (len) {
      ring.set_desc(1, kData, len, kDescFNext | (data_writable ? kDescFWrite : 0), 2);
      next = 2;
    }
    ring.set_desc(next, kStatus, 1, kDescFWrite);
    if (!len) ring.set_desc(0, kHdr, 16, kDescFNext, next);
    ring.publish(0);
    d.kick(0);
    last_used = ring.used_len(static_cast<uint16_t>(ring.used_idx() - 1));
    return ram.get<uint8_t>(kStatus);
  }
  TestRam ram;
  BlkDevice dev;
  CountingInterrupt irq;
  MmioTransport t;
  MmioDriver d;
  TestRing ring;
  std::string image;
  uint32_t last_used = 0;
};

std::string read_file(const std::string& path, off_t off, size_t len) {
  std::string out(len, '\0');
  int fd = open(path.c_str(), O_RDONLY);
  ssize_t n = pread(fd, out.data(), len, off);
  close(fd);
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

}  // namespace

VMM_TEST(dev_blk_reports_capacity_and_features) {
  Fixture f;
  uint64_t cap = 0;
  f.t.read(0x100, reinterpret_cast<uint8_t*>(&cap), 8);
  CHECK_EQ(cap, uint64_t{128});
  uint32_t blk_size = 0;
  f.t.read(0x114, reinterpret_cast<uint8_t*>(&blk_size), 4);
  CHECK_EQ(blk_size, 512u);
  CHECK(!(f.d.device_features() & kBlkFRo));
  CHECK_EQ(f.d.r(0x008), 2u);
  Fixture ro(/*ro_slot=*/true);
  CHECK(ro.d.device_features() & kBlkFRo);
}

VMM_TEST(dev_blk_reads_sectors) {
  Fixture f;
  CHECK_EQ(f.request(kBlkTIn, 5, 1024, true), kBlkSOk);
  CHECK_EQ(f.ram.bytes[kData], 5);
  CHECK_EQ(f.ram.bytes[kData + 1023], 6);
  CHECK_EQ(f.last_used, 1025u);
  CHECK_EQ(f.irq.count(), 1u);
}

VMM_TEST(dev_blk_writes_sectors_and_flushes) {
  Fixture f;
  f.ram.fill(kData, 0x77, 512);
  CHECK_EQ(f.request(kBlkTOut, 3, 512, false), kBlkSOk);
  CHECK(read_file(f.image, 3 * 512, 512) == std::string(512, '\x77'));
  CHECK_EQ(f.request(kBlkTFlush, 0, 0, false), kBlkSOk);
}

VMM_TEST(dev_blk_device_id_is_the_serial) {
  Fixture f;
  f.ram.fill(kData, 0xff, 64);
  CHECK_EQ(f.request(kBlkTGetId, 0, 20, true), kBlkSOk);
  CHECK(std::string(reinterpret_cast<char*>(&f.ram.bytes[kData])) == "vc-disk-1");
  CHECK_EQ(f.ram.bytes[kData + 19], 0);  // padded with NULs
  std::string error;
  auto other = FileBlockBackend::open(f.image, true, &error);
  CHECK(!f.dev.attach(std::move(other), "x", &error));  // slot occupied
  f.dev.detach();
  auto again = FileBlockBackend::open(f.image, true, &error);
  CHECK(!f.dev.attach(std::move(again), std::string(21, 's'), &error));
  CHECK(error.find("longer than 20") != std::string::npos);
}

VMM_TEST(dev_blk_rejects_out_of_bounds_and_odd_lengths) {
  Fixture f;
  CHECK_EQ(f.request(kBlkTIn, 127, 512, true), kBlkSOk);   // the last sector
  CHECK_EQ(f.request(kBlkTIn, 127, 1024, true), kBlkSIoErr);  // one past the end
  CHECK_EQ(f.request(kBlkTIn, UINT64_MAX, 512, true), kBlkSIoErr);  // sector * 512 would wrap
  CHECK_EQ(f.request(kBlkTIn, 0, 100, true), kBlkSIoErr);  // not whole sectors
  CHECK_EQ(f.request(kBlkTOut, 128, 512, false), kBlkSIoErr);
  CHECK_EQ(f.request(99, 0, 0, false), kBlkSUnsupp);
}

VMM_TEST(dev_blk_read_only_slot_or_file_fails_writes) {
  Fixture slot(/*ro_slot=*/true, /*ro_file=*/false);
  CHECK_EQ(slot.request(kBlkTOut, 0, 512, false), kBlkSIoErr);
  CHECK_EQ(slot.request(kBlkTIn, 0, 512, true), kBlkSOk);
  Fixture file(/*ro_slot=*/false, /*ro_file=*/true);
  CHECK_EQ(file.request(kBlkTOut, 0, 512, false), kBlkSIoErr);
  CHECK(read_file(file.image, 0, 1) == std::string(1, '\0'));
  CHECK_EQ(file.request(kBlkTFlush, 0, 0, false), kBlkSOk);
}

VMM_TEST(dev_blk_empty_slot_then_attach_raises_config_change) {
  Fixture f(false, false, /*attach_now=*/false);
  uint64_t cap = 1;
  f.t.read(0x100, reinterpret_cast<uint8_t*>(&cap), 8);
  CHECK_EQ(cap, uint64_t{0});
  CHECK_EQ(f.request(kBlkTIn, 0, 512, true), kBlkSIoErr);
  f.d.ack_interrupts();
  uint32_t gen = f.d.r(0x0fc);
  f.attach(false, "slot-disk");
  CHECK_EQ(f.d.r(0x060), kInterruptConfigChange);
  CHECK_EQ(f.d.r(0x0fc), gen + 1);
  f.t.read(0x100, reinterpret_cast<uint8_t*>(&cap), 8);
  CHECK_EQ(cap, uint64_t{128});
  CHECK_EQ(f.request(kBlkTIn, 2, 512, true), kBlkSOk);
  CHECK_EQ(f.ram.bytes[kData], 2);
  f.dev.detach();
  f.t.read(0x100, reinterpret_cast<uint8_t*>(&cap), 8);
  CHECK_EQ(cap, uint64_t{0});
}

VMM_TEST(dev_blk_header_split_across_descriptors_and_bad_layouts) {
  Fixture f;
  // The 16-byte header in two pieces (7 + 9 bytes) and the data in two pieces.
  f.ram.put<uint32_t>(kHdr, kBlkTIn);
  f.ram.put<uint64_t>(kHdr + 8, 9);
  f.ring.set_desc(0, kHdr, 7, kDescFNext, 1);
  f.ring.set_desc(1, kHdr + 7, 9, kDescFNext, 2);
  f.ring.set_desc(2, kData, 256, kDescFNext | kDescFWrite, 3);
  f.ring.set_desc(3, kData + 0x1000, 256, kDescFNext | kDescFWrite, 4);
  f.ring.set_desc(4, kStatus, 1, kDescFWrite);
  f.ring.publish(0);
  f.d.kick(0);
  CHECK_EQ(f.ram.get<uint8_t>(kStatus), kBlkSOk);
  CHECK_EQ(f.ram.bytes[kData + 255], 9);
  CHECK_EQ(f.ram.bytes[kData + 0x1000], 9);
  // A header cut short: the request fails with IOERR in its status byte.
  f.ring.set_desc(0, kHdr, 8, kDescFNext, 4);
  f.ring.publish(0);
  f.d.kick(0);
  CHECK_EQ(f.ram.get<uint8_t>(kStatus), kBlkSIoErr);
  // No writable byte at all: nothing can be reported, the chain comes back with length 0.
  f.ring.set_desc(0, kHdr, 16);
  f.ring.publish(0);
  f.d.kick(0);
  CHECK_EQ(f.ring.used_len(static_cast<uint16_t>(f.ring.used_idx() - 1)), 0u);
  // A write whose data descriptor is device-writable (the wrong direction) carries no data: it
  // writes nothing, and the status still lands in the last writable byte.
  f.ram.fill(kData, 0x55, 512);
  CHECK_EQ(f.request(kBlkTOut, 0, 512, true), kBlkSOk);
  CHECK(read_file(f.image, 0, 1) == std::string(1, '\0'));
}

VMM_TEST(dev_rng_fills_buffers) {
  TestRam ram;
  RngDevice dev;
  CountingInterrupt irq;
  MmioTransport t(ram.mem, &dev, &irq);
  MmioDriver d(&t);
  TestRing ring(&ram, 0x10000, 8);
  CHECK_EQ(d.r(0x008), 4u);
  CHECK(d.negotiate(kModernRing));
  d.setup_queue(0, ring);
  d.driver_ok();
  ring.set_desc(0, 0x40000, 64, kDescFWrite | kDescFNext, 1);
  ring.set_desc(1, 0x48000, 64, kDescFWrite);
  ring.publish(0);
  d.kick(0);
  CHECK_EQ(ring.used_len(0), 128u);
  int zeros = 0;
  for (int i = 0; i < 64; i++) zeros += ram.bytes[0x40000 + i] == 0 && ram.bytes[0x48000 + i] == 0;
  CHECK(zeros < 8);
  CHECK_EQ(irq.count(), 1u);
  ring.set_desc(2, 0x40000, 16);  // a device-readable buffer gets nothing
  ring.publish(2);
  d.kick(0);
  CHECK_EQ(ring.used_len(1), 0u);
}
