// Finding a hot-plugged image disk by its serial: QEMU's scsi-hd shows it in the SCSI Unit Serial
// Number VPD page (/sys/block/sdX/device/vpd_pg80), virtio-blk in /sys/block/vdX/serial.
#pragma once

#include <string>

// "/dev/sdX" (or vdX) of the disk whose serial is serial, once its sysfs entry and its device node
// exist and the node can be opened; "" until then (hot-plug takes a moment: call again).
std::string blockdev_find_by_serial(const std::string& serial);
