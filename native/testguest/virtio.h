/* A minimal virtio-mmio (version 2) driver for the test guests: device discovery by slot, feature
 * negotiation, split virtqueues, and polling for used buffers (interrupts stay off: the avail
 * ring's NO_INTERRUPT flag is set and the guest never enables IF). Everything is at CPL3. */
#pragma once

#include "rt.h"

#define VIRTIO_MMIO_BASE 0xd0000000ull
#define VIRTIO_SLOT_SIZE 0x1000
#define VIRTIO_MAX_SLOTS 19
#define VIRTIO_MAGIC 0x74726976 /* "virt" */

#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_RNG 4
#define VIRTIO_ID_VSOCK 19

#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_AVAIL_F_NO_INTERRUPT 1

#define VQ_SIZE 64

struct vring_desc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};

struct vring_used_elem {
  uint32_t id;
  uint32_t len;
};

struct vq {
  uint16_t size;
  uint16_t index;
  volatile struct vring_desc* desc;
  volatile uint16_t* avail; /* flags, idx, ring[size], used_event */
  volatile uint16_t* used;  /* flags, idx, then ring of vring_used_elem */
  uint16_t avail_idx;       /* next avail idx to publish */
  uint16_t used_seen;       /* used idx consumed so far */
  uint16_t next_desc;       /* descriptors are handed out round-robin */
  uint64_t notify;          /* QueueNotify register */
};

struct vdev {
  uint64_t base;
  uint32_t slot;
  uint32_t device_id;
  unsigned nq;
  struct vq q[3];
};

/* One buffer of a chain. */
struct vbuf {
  uint64_t addr;
  uint32_t len;
  bool device_writes;
};

/* The nth device (0-based) with this id among the virtio-mmio slots; false when there is none. */
bool virtio_find(uint32_t device_id, unsigned nth, struct vdev* d);
/* Resets the device, negotiates VERSION_1 plus `features` (bits the device must offer), sets up
 * `nq` queues and sets DRIVER_OK. False (with a FAIL line) when the device refuses. */
bool virtio_init(struct vdev* d, uint64_t features, unsigned nq);
uint32_t virtio_read(const struct vdev* d, uint32_t reg);
void virtio_write(const struct vdev* d, uint32_t reg, uint32_t value);
uint32_t virtio_status(const struct vdev* d);

/* Writes the descriptors of a chain starting at descriptor `head` (consecutive indices, wrapping)
 * without publishing it. */
void vq_fill(struct vq* q, uint16_t head, const struct vbuf* bufs, unsigned n);
/* Allocates descriptors round-robin, fills them and publishes the chain; returns its head. */
uint16_t vq_add(struct vq* q, const struct vbuf* bufs, unsigned n);
/* Publishes a chain whose descriptors are already written. */
void vq_publish(struct vq* q, uint16_t head);
void vq_kick(struct vq* q);
/* Waits up to `us` for the next used entry; false on timeout. */
bool vq_wait(struct vq* q, struct vring_used_elem* out, uint64_t us);
/* Takes the next used entry if there is one, without waiting. */
bool vq_poll(struct vq* q, struct vring_used_elem* out);
