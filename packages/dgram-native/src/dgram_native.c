// dgram-native: IPv4 UDP sockets with the options node:dgram lacks (SO_BINDTODEVICE, IP_PKTINFO,
// SO_REUSEPORT) and batched I/O (recvmmsg/sendmmsg, UDP GSO on send, UDP GRO on receive), driven
// by a uv_poll on libuv's loop.
//
// Division of labour with lib/index.ts: this file does syscalls only and never throws for a
// failed syscall; it returns -errno (or { errno, syscall } from open) and the wrapper turns that
// into a typed error. Received datagrams are written into a slab and a metadata Uint32Array
// that the wrapper allocated, so a whole recvmmsg batch costs one call into JS and no allocation.
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SO_RXQ_OVFL
#define SO_RXQ_OVFL 40
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

// Metadata slots per received message; lib/received.ts mirrors this layout (M_* constants).
// One entry per received message. With UDP GRO one message holds several datagrams from the same
// source, back to back, each M_SEGMENT bytes long except the last (M_SEGMENT 0: one datagram).
// After a batch the payloads of all messages are moved together at the start of the slab, so the
// wrapper copies them out with one copy.
enum { M_LEN, M_FLAGS, M_SRC_ADDR, M_SRC_PORT, M_DST_ADDR, M_LOCAL_ADDR, M_IFINDEX, M_DROPS, M_SEGMENT, META_SLOTS };
enum { FLAG_TRUNCATED = 1, FLAG_PKTINFO = 2 };
// Per-datagram slots of the sendBatch metadata array.
enum { S_ADDR, S_PORT, S_SRC_ADDR, S_IFINDEX, SEND_SLOTS };
// First argument of the JS event callback.
enum { EV_BATCH = 0, EV_WRITABLE = 1, EV_ERROR = 2 };

// Readiness is level-triggered: after this many full batches we return to the loop so that one
// flooded socket cannot starve timers and other sockets.
#define MAX_BATCHES_PER_WAKEUP 8
// sendmmsg: messages per call, and datagrams per call (a GSO message carries several).
#define SEND_CHUNK 64
#define SEND_MAX_DATAGRAMS 1024
// UDP GSO limits: the kernel accepts up to UDP_MAX_SEGMENTS segments (64; 128 on recent kernels) and
// at most 65507 payload bytes in one IPv4 UDP send (IP total length 65535 - 20 - 8).
#define GSO_MAX_SEGMENTS 64
#define GSO_MAX_BYTES 65507
#define CONTROL_SPACE (CMSG_SPACE(sizeof(struct in_pktinfo)) + CMSG_SPACE(sizeof(uint32_t)) + CMSG_SPACE(sizeof(int)))
#define SEND_CONTROL_SPACE (CMSG_SPACE(sizeof(struct in_pktinfo)) + CMSG_SPACE(sizeof(uint16_t)))

// TFTP send pump (see js_tftp_pump_start): answers in-order ACKs of a read transfer with the next
// DATA window straight from a buffer of file bytes, without calling into JS.
#define PUMP_MAX_WINDOW 64
// ACK rounds answered per wakeup before returning to the loop, so that one fast client cannot keep
// timers, the server port and other transfers waiting.
#define PUMP_ROUNDS 64
// Reading right after a send saves a loop turn when the client has already answered (one CPU, the
// client preempting on the DATA's wakeup) and costs an empty recvmmsg when not (many clients: the
// client has rarely run yet). It is tried while it hits at least 1 time in 5 (score drift
// 4p - (1 - p) > 0), else once every PUMP_PROBE rounds.
#define PUMP_HIT 4
#define PUMP_SCORE_MAX 32
#define PUMP_PROBE 16
enum { OP_DATA = 3, OP_ACK = 4 };

typedef struct {
  bool armed;
  uint32_t peer_addr;   // host order, as in the receive metadata
  uint32_t peer_port;
  uint32_t block_size;
  uint32_t window_size;
  uint16_t next_block;  // wire number of the next block to send; the expected ACK is the one before
  uint8_t *data;        // file bytes from the next block on: a Buffer held by data_ref, or in map
  uint8_t *map;         // (file mode) the pump's own read-only mapping of the file, or NULL
  size_t map_len;
  size_t data_len;      // bytes available from the next block on
  size_t pos;           // bytes of those already sent
  napi_ref data_ref;
  bool timed;           // the outstanding window was sent by the pump, once, at last_send_ns
  // Whether reading right after a send pays: +PUMP_HIT per answer found, -1 per empty read, in
  // 0..PUMP_SCORE_MAX; at 0 only every PUMP_PROBE-th round tries (to notice a change).
  int read_score;
  uint32_t probe;
  uint64_t last_send_ns;
  // Progress since the last stop: windows acknowledged (each answered with the next window), the
  // RTT of the last one the pump timed, windows the kernel took only in part.
  double windows;
  double last_rtt_ms;
  double short_sends;
} dn_pump;

typedef struct {
  int fd;
  bool polling;   // uv_poll initialised and not yet closed
  bool closing;   // close() called; no more callbacks into JS except the close callback
  bool closed;    // uv_close completed, fd closed, references released
  int poll_events;          // what the uv_poll watches now (0: stopped)
  bool watch_writable;      // the wrapper has datagrams queued after EAGAIN
  bool reading_paused;      // receive coalescing: waiting for the timer before reading again
  int open_handles;         // uv handles not yet closed (poll, and the timer if any)
  uint32_t coalesce_ms;     // receive coalescing window; 0: read as soon as readable
  uv_poll_t poll;
  uv_timer_t coalesce_timer;  // initialised only when coalesce_ms > 0
  napi_env env;
  napi_ref self_ref;      // strong while open, so the handle outlives JS references to it
  napi_ref callback_ref;  // (event, value) => void
  napi_ref slab_ref;
  napi_ref meta_ref;
  napi_ref close_cb_ref;
  napi_async_context async_context;
  uint8_t *slab;
  uint32_t *meta;
  uint32_t batch_size;
  uint32_t slot_size;  // receive buffer per message: maxDatagramSize, or 65535 with GRO
  bool gso;            // sendBatch coalesces runs of equal-size datagrams (UDP_SEGMENT)
  bool gro;            // UDP_GRO granted: messages may hold several datagrams
  // connect()ed to peer_addr:peer_port (host order): datagrams to the peer go without a
  // destination address, so that udp_sendmsg uses the socket's cached route instead of a lookup.
  bool connected;
  uint32_t peer_addr;
  uint32_t peer_port;
  double gso_sends;    // GSO messages accepted by the kernel
  struct mmsghdr *msgs;
  struct iovec *iovs;
  struct sockaddr_in *names;
  uint8_t *controls;
  dn_pump pump;
} dn_socket;

#define CHECK(call)                                                                   \
  do {                                                                                \
    if ((call) != napi_ok) {                                                          \
      napi_throw_error(env, "ERR_DGRAM_NATIVE", "N-API call failed: " #call);         \
      return NULL;                                                                    \
    }                                                                                 \
  } while (0)

static void free_socket(dn_socket *s) {
  if (s->pump.map != NULL) munmap(s->pump.map, s->pump.map_len);
  free(s->msgs);
  free(s->iovs);
  free(s->names);
  free(s->controls);
  free(s);
}

static void finalize_socket(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  dn_socket *s = data;
  // Only reachable while open at environment teardown (self_ref keeps it alive otherwise); the
  // uv handle may still be linked into the loop then, so leaking is the only safe choice.
  if (s->polling && !s->closed) return;
  if (s->fd >= 0) close(s->fd);
  free_socket(s);
}

static dn_socket *get_socket(napi_env env, napi_value handle) {
  void *data = NULL;
  if (napi_get_value_external(env, handle, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected a dgram-native socket handle");
    return NULL;
  }
  return data;
}

static napi_value make_int(napi_env env, int64_t value) {
  napi_value v;
  napi_create_int64(env, value, &v);
  return v;
}

static uint32_t get_u32_prop(napi_env env, napi_value obj, const char *name, uint32_t fallback) {
  napi_value v;
  napi_valuetype t;
  uint32_t out = fallback;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok) return fallback;
  if (napi_typeof(env, v, &t) != napi_ok) return fallback;
  if (t == napi_number) napi_get_value_uint32(env, v, &out);
  else if (t == napi_boolean) {
    bool b;
    napi_get_value_bool(env, v, &b);
    out = b;
  }
  return out;
}

// Calls the socket's JS callback as a proper async callback (microtasks run afterwards, async
// hooks see it); an exception thrown by JS becomes an uncaught exception, as for node:dgram.
static void call_js(dn_socket *s, napi_ref fn_ref, int event, int64_t value) {
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value fn, recv, argv[2], result;
  if (napi_get_reference_value(env, fn_ref, &fn) == napi_ok && fn != NULL) {
    napi_get_global(env, &recv);
    napi_create_int32(env, event, &argv[0]);
    napi_create_int64(env, value, &argv[1]);
    if (napi_make_callback(env, s->async_context, recv, fn, 2, argv, &result) != napi_ok) {
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) {
        napi_value error;
        napi_get_and_clear_last_exception(env, &error);
        napi_fatal_exception(env, error);
      }
    }
  }
  napi_close_handle_scope(env, scope);
}

static void fill_meta(dn_socket *s, unsigned i) {
  struct mmsghdr *m = &s->msgs[i];
  uint32_t *meta = &s->meta[i * META_SLOTS];
  uint32_t flags = (m->msg_hdr.msg_flags & MSG_TRUNC) ? FLAG_TRUNCATED : 0;
  meta[M_LEN] = m->msg_len;
  meta[M_SRC_ADDR] = ntohl(s->names[i].sin_addr.s_addr);
  meta[M_SRC_PORT] = ntohs(s->names[i].sin_port);
  meta[M_DST_ADDR] = 0;
  meta[M_LOCAL_ADDR] = 0;
  meta[M_IFINDEX] = 0;
  meta[M_SEGMENT] = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&m->msg_hdr); c != NULL; c = CMSG_NXTHDR(&m->msg_hdr, c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      struct in_pktinfo info;
      memcpy(&info, CMSG_DATA(c), sizeof(info));
      meta[M_DST_ADDR] = ntohl(info.ipi_addr.s_addr);
      meta[M_LOCAL_ADDR] = ntohl(info.ipi_spec_dst.s_addr);
      meta[M_IFINDEX] = (uint32_t)info.ipi_ifindex;
      flags |= FLAG_PKTINFO;
    } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
      memcpy(&meta[M_DROPS], CMSG_DATA(c), sizeof(uint32_t));
    } else if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
      int segment;
      memcpy(&segment, CMSG_DATA(c), sizeof(segment));
      // The kernel reports the segment size even for a lone datagram; only a message longer
      // than one segment holds several.
      if (segment > 0 && (uint32_t)segment < m->msg_len) meta[M_SEGMENT] = (uint32_t)segment;
    }
  }
  meta[M_FLAGS] = flags;
}

static void on_poll(uv_poll_t *handle, int status, int events);

// Watches for what is wanted now: readable unless coalescing, writable while sends are queued.
static void update_poll(dn_socket *s) {
  int events = (s->reading_paused ? 0 : UV_READABLE) | (s->watch_writable ? UV_WRITABLE : 0);
  if (events == s->poll_events) return;
  s->poll_events = events;
  if (events == 0) uv_poll_stop(&s->poll);
  else uv_poll_start(&s->poll, events, on_poll);
}

static void receive_batches(dn_socket *s);

static void on_coalesce_timer(uv_timer_t *timer) {
  dn_socket *s = timer->data;
  if (s->closing) return;
  s->reading_paused = false;
  update_poll(s);
  receive_batches(s);  // whatever arrived meanwhile, without waiting for another poll round
}

// One recvmmsg of up to `max` messages without waiting: fills meta, packs the payloads at the
// start of the slab and returns the number of messages (0 if none was queued), or -errno for a
// receive error.
static int receive_once(dn_socket *s, uint32_t max) {
  for (uint32_t i = 0; i < max; i++) {
    struct msghdr *h = &s->msgs[i].msg_hdr;
    h->msg_namelen = sizeof(struct sockaddr_in);
    h->msg_controllen = CONTROL_SPACE;
    h->msg_flags = 0;
    s->meta[i * META_SLOTS + M_DROPS] = 0;
  }
  int n;
  do n = recvmmsg(s->fd, s->msgs, max, MSG_DONTWAIT, NULL);
  while (n < 0 && errno == EINTR);
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
  size_t packed = 0;
  for (int i = 0; i < n; i++) {
    fill_meta(s, (unsigned)i);
    // Payload i sits at i * slot_size; moving it down to the end of payload i - 1 never
    // overwrites a payload not yet moved.
    uint32_t len = s->meta[i * META_SLOTS + M_LEN];
    if (packed != (size_t)i * s->slot_size) memmove(s->slab + packed, s->slab + (size_t)i * s->slot_size, len);
    packed += len;
  }
  return n;
}

// (pump_receive and its helpers are defined after the send helpers they use.)
static void pump_receive(dn_socket *s);

static void receive_batches(dn_socket *s) {
  if (s->pump.armed) {
    pump_receive(s);
    return;
  }
  for (int round = 0; round < MAX_BATCHES_PER_WAKEUP && !s->closing; round++) {
    int n = receive_once(s, s->batch_size);
    if (n < 0) {
      call_js(s, s->callback_ref, EV_ERROR, n);
      return;
    }
    if (n == 0) return;
    call_js(s, s->callback_ref, EV_BATCH, n);
    if ((uint32_t)n < s->batch_size) {
      // Queue drained (skip the syscall that would say so). With coalescing, stop reading for a
      // while so that what arrives meanwhile is read in one batch rather than one wakeup each.
      if (s->coalesce_ms > 0 && !s->closing) {
        s->reading_paused = true;
        update_poll(s);
        uv_timer_start(&s->coalesce_timer, on_coalesce_timer, s->coalesce_ms, 0);
      }
      return;
    }
  }
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  dn_socket *s = handle->data;
  if (s->closing) return;
  if (status == UV_EBADF && fcntl(s->fd, F_GETFD) != -1) {
    // libuv reports POLLERR as UV_EBADF and stops the handle. On an open socket that is a pending
    // socket error: on a connected one, an ICMP error about the peer (ECONNREFUSED for port
    // unreachable). Report it (reading SO_ERROR clears it) and watch the socket again.
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    s->poll_events = 0;
    update_poll(s);
    if (err != 0) call_js(s, s->callback_ref, EV_ERROR, -err);
    if (!s->closing) receive_batches(s);
    return;
  }
  if (status < 0) {
    call_js(s, s->callback_ref, EV_ERROR, status);
    return;
  }
  if ((events & UV_WRITABLE) && !s->closing) call_js(s, s->callback_ref, EV_WRITABLE, 0);
  if ((events & UV_READABLE) && !s->closing) receive_batches(s);
}

static void release_refs(dn_socket *s) {
  napi_env env = s->env;
  napi_ref *refs[] = {&s->callback_ref, &s->slab_ref, &s->meta_ref, &s->close_cb_ref, &s->pump.data_ref};
  for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
    if (*refs[i] != NULL) {
      napi_delete_reference(env, *refs[i]);
      *refs[i] = NULL;
    }
  }
  if (s->async_context != NULL) {
    napi_async_destroy(env, s->async_context);
    s->async_context = NULL;
  }
  if (s->self_ref != NULL) {
    napi_ref self = s->self_ref;
    s->self_ref = NULL;
    napi_delete_reference(env, self);  // may make the handle collectable: last touch of s
  }
}

static void on_closed(uv_handle_t *handle) {
  dn_socket *s = handle->data;
  if (--s->open_handles > 0) return;
  napi_handle_scope scope;
  napi_open_handle_scope(s->env, &scope);
  // The fd is closed only now: libuv must have stopped watching it before the number is reused.
  close(s->fd);
  s->fd = -1;
  s->closed = true;
  if (s->close_cb_ref != NULL) call_js(s, s->close_cb_ref, 0, 0);
  release_refs(s);
  napi_close_handle_scope(s->env, scope);
}

static napi_value failure(napi_env env, int fd, int err, const char *syscall) {
  if (fd >= 0) close(fd);
  napi_value obj, sc;
  napi_create_object(env, &obj);
  napi_set_named_property(env, obj, "errno", make_int(env, err));
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sc);
  napi_set_named_property(env, obj, "syscall", sc);
  return obj;
}

static int set_int_option(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof(value)) == 0 ? 0 : errno;
}

// Buffer sizes beyond net.core.[rw]mem_max need the *FORCE variants (CAP_NET_ADMIN); without
// the capability fall back to the capped request. The caller reads back what was granted.
static int set_buffer_size(int fd, int force_name, int name, int value) {
  if (set_int_option(fd, SOL_SOCKET, force_name, value) == 0) return 0;
  return set_int_option(fd, SOL_SOCKET, name, value);
}

// open(options, slab: Buffer, meta: Uint32Array, callback) -> { handle } | { errno, syscall }
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_value opts = argv[0];

  uint32_t bind_address = get_u32_prop(env, opts, "bindAddress", 0);
  uint32_t port = get_u32_prop(env, opts, "port", 0);
  uint32_t batch_size = get_u32_prop(env, opts, "batchSize", 32);
  uint32_t slot_size = get_u32_prop(env, opts, "slotSize", 2048);
  char ifname[IFNAMSIZ] = {0};
  napi_value ifname_value;
  napi_valuetype t;
  CHECK(napi_get_named_property(env, opts, "interface", &ifname_value));
  CHECK(napi_typeof(env, ifname_value, &t));
  if (t == napi_string) {
    size_t len = 0;
    CHECK(napi_get_value_string_utf8(env, ifname_value, NULL, 0, &len));
    if (len == 0 || len >= IFNAMSIZ) return failure(env, -1, ENODEV, "setsockopt(SO_BINDTODEVICE)");
    CHECK(napi_get_value_string_utf8(env, ifname_value, ifname, sizeof(ifname), &len));
  }

  void *slab = NULL, *meta = NULL;
  size_t slab_len = 0, meta_len = 0;
  napi_typedarray_type meta_type;
  napi_value meta_ab;
  size_t meta_offset;
  CHECK(napi_get_buffer_info(env, argv[1], &slab, &slab_len));
  CHECK(napi_get_typedarray_info(env, argv[2], &meta_type, &meta_len, &meta, &meta_ab, &meta_offset));
  if (batch_size == 0 || batch_size > 1024 || slot_size == 0 || slot_size > 65535 ||
      slab_len < (size_t)batch_size * slot_size || meta_type != napi_uint32_array ||
      meta_len < (size_t)batch_size * META_SLOTS) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "dgram-native: slab/meta do not fit batchSize x slotSize");
    return NULL;
  }

  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return failure(env, -1, errno, "socket");
  int err;
  if (get_u32_prop(env, opts, "reuseAddr", 0) && (err = set_int_option(fd, SOL_SOCKET, SO_REUSEADDR, 1)))
    return failure(env, fd, err, "setsockopt(SO_REUSEADDR)");
  // reusePort 1: before bind, to join the port's group; 2: after bind. An ephemeral bind (port 0)
  // of a socket with SO_REUSEPORT may pick a port that a reuseport socket of the same user already
  // has (the kernel's free-port search counts such ports as free), and join its group; set after
  // the bind, the kernel picks a port nobody uses and later sockets can still join it.
  uint32_t reuse_port = get_u32_prop(env, opts, "reusePort", 0);
  if (reuse_port == 1 && (err = set_int_option(fd, SOL_SOCKET, SO_REUSEPORT, 1)))
    return failure(env, fd, err, "setsockopt(SO_REUSEPORT)");
  if (get_u32_prop(env, opts, "broadcast", 0) && (err = set_int_option(fd, SOL_SOCKET, SO_BROADCAST, 1)))
    return failure(env, fd, err, "setsockopt(SO_BROADCAST)");
  if (ifname[0] != 0 && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, strlen(ifname) + 1) != 0)
    return failure(env, fd, errno, "setsockopt(SO_BINDTODEVICE)");
  uint32_t rcvbuf = get_u32_prop(env, opts, "recvBufferSize", 0);
  if (rcvbuf > 0 && (err = set_buffer_size(fd, SO_RCVBUFFORCE, SO_RCVBUF, (int)rcvbuf)))
    return failure(env, fd, err, "setsockopt(SO_RCVBUF)");
  uint32_t sndbuf = get_u32_prop(env, opts, "sendBufferSize", 0);
  if (sndbuf > 0 && (err = set_buffer_size(fd, SO_SNDBUFFORCE, SO_SNDBUF, (int)sndbuf)))
    return failure(env, fd, err, "setsockopt(SO_SNDBUF)");
  if (get_u32_prop(env, opts, "pktinfo", 1) && (err = set_int_option(fd, IPPROTO_IP, IP_PKTINFO, 1)))
    return failure(env, fd, err, "setsockopt(IP_PKTINFO)");
  if ((err = set_int_option(fd, SOL_SOCKET, SO_RXQ_OVFL, 1)))
    return failure(env, fd, err, "setsockopt(SO_RXQ_OVFL)");
  // GSO and GRO are optimisations: a kernel without them (before 4.18 / 5.0) gets plain datagrams.
  // Setting a socket-wide segment size of 0 changes nothing; it only probes that the kernel knows
  // UDP_SEGMENT — an older one would silently ignore the per-send cmsg and send one huge datagram.
  bool gso = get_u32_prop(env, opts, "gso", 1) && set_int_option(fd, SOL_UDP, UDP_SEGMENT, 0) == 0;
  // GRO needs slots that hold a whole coalesced message (64 KiB), else segments would be cut off.
  bool gro = get_u32_prop(env, opts, "gro", 0) && slot_size == 65535 && set_int_option(fd, SOL_UDP, UDP_GRO, 1) == 0;
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(bind_address)};
  if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) return failure(env, fd, errno, "bind");
  if (reuse_port == 2 && (err = set_int_option(fd, SOL_SOCKET, SO_REUSEPORT, 1)))
    return failure(env, fd, err, "setsockopt(SO_REUSEPORT)");

  dn_socket *s = calloc(1, sizeof(*s));
  if (s != NULL) {
    s->msgs = calloc(batch_size, sizeof(*s->msgs));
    s->iovs = calloc(batch_size, sizeof(*s->iovs));
    s->names = calloc(batch_size, sizeof(*s->names));
    s->controls = calloc(batch_size, CONTROL_SPACE);
  }
  if (s == NULL || !s->msgs || !s->iovs || !s->names || !s->controls) {
    if (s != NULL) free_socket(s);
    return failure(env, fd, ENOMEM, "malloc");
  }
  s->fd = fd;
  s->env = env;
  s->slab = slab;
  s->meta = meta;
  s->batch_size = batch_size;
  s->slot_size = slot_size;
  s->gso = gso;
  s->gro = gro;
  s->pump.last_rtt_ms = -1;
  s->pump.read_score = PUMP_SCORE_MAX / 4;
  for (uint32_t i = 0; i < batch_size; i++) {
    s->iovs[i].iov_base = s->slab + (size_t)i * slot_size;
    s->iovs[i].iov_len = slot_size;
    struct msghdr *h = &s->msgs[i].msg_hdr;
    h->msg_name = &s->names[i];
    h->msg_iov = &s->iovs[i];
    h->msg_iovlen = 1;
    h->msg_control = s->controls + (size_t)i * CONTROL_SPACE;
  }

  napi_value handle, resource_name;
  if (napi_create_external(env, s, finalize_socket, NULL, &handle) != napi_ok) {
    free_socket(s);
    close(fd);
    napi_throw_error(env, "ERR_DGRAM_NATIVE", "napi_create_external failed");
    return NULL;
  }
  // From here on the finalizer owns s and closes fd if a later step fails.
  CHECK(napi_create_reference(env, argv[1], 1, &s->slab_ref));
  CHECK(napi_create_reference(env, argv[2], 1, &s->meta_ref));
  CHECK(napi_create_reference(env, argv[3], 1, &s->callback_ref));
  CHECK(napi_create_string_utf8(env, "DgramNativeSocket", NAPI_AUTO_LENGTH, &resource_name));
  CHECK(napi_async_init(env, NULL, resource_name, &s->async_context));

  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  int rc = uv_poll_init(loop, &s->poll, fd);
  if (rc != 0) {
    release_refs(s);
    return failure(env, -1, -rc, "uv_poll_init");  // fd closed by the finalizer
  }
  s->poll.data = s;
  s->polling = true;
  s->open_handles = 1;
  s->coalesce_ms = get_u32_prop(env, opts, "receiveCoalescingMs", 0);
  if (s->coalesce_ms > 0) {
    uv_timer_init(loop, &s->coalesce_timer);
    s->coalesce_timer.data = s;
    s->open_handles++;
  }
  update_poll(s);
  CHECK(napi_create_reference(env, handle, 1, &s->self_ref));

  napi_value result;
  CHECK(napi_create_object(env, &result));
  CHECK(napi_set_named_property(env, result, "handle", handle));
  return result;
}

// info(handle) -> [address, port, recvBufferSize, sendBufferSize, gro] (sizes as the kernel reports
// them, i.e. including its bookkeeping overhead: Linux doubles the requested value)
static napi_value js_info(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], arr;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  dn_socket *s = get_socket(env, argv[0]);
  if (s == NULL) return NULL;
  struct sockaddr_in sin = {0};
  socklen_t len = sizeof(sin);
  int rcv = 0, snd = 0;
  socklen_t ilen = sizeof(int);
  if (s->fd < 0 || getsockname(s->fd, (struct sockaddr *)&sin, &len) != 0) return make_int(env, -(s->fd < 0 ? EBADF : errno));
  getsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &rcv, &ilen);
  ilen = sizeof(int);
  getsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &snd, &ilen);
  CHECK(napi_create_array_with_length(env, 5, &arr));
  napi_set_element(env, arr, 0, make_int(env, ntohl(sin.sin_addr.s_addr)));
  napi_set_element(env, arr, 1, make_int(env, ntohs(sin.sin_port)));
  napi_set_element(env, arr, 2, make_int(env, rcv));
  napi_set_element(env, arr, 3, make_int(env, snd));
  napi_set_element(env, arr, 4, make_int(env, s->gro));
  return arr;
}

// Fills one outgoing msghdr over `iovlen` buffers. The IP_PKTINFO cmsg picks the source address
// and/or the outgoing interface for this message only (so a reply to a broadcast leaves where the
// request came in). With `segment` > 0 a UDP_SEGMENT cmsg has the kernel cut the payload into
// datagrams of that size (the last may be shorter) after one pass down the stack: UDP GSO.
// On a connected socket a datagram to the peer goes without msg_name: udp_sendmsg then takes the
// socket's cached route (with a destination address, or an IP_PKTINFO source or interface, it
// looks the route up for every send).
static void prepare_send(const dn_socket *s, struct msghdr *h, struct sockaddr_in *to, struct iovec *iov, size_t iovlen,
                         uint8_t *control, const uint32_t *m, uint16_t segment) {
  memset(h, 0, sizeof(*h));
  if (!s->connected || m[S_ADDR] != s->peer_addr || m[S_PORT] != s->peer_port) {
    to->sin_family = AF_INET;
    to->sin_port = htons((uint16_t)m[S_PORT]);
    to->sin_addr.s_addr = htonl(m[S_ADDR]);
    memset(to->sin_zero, 0, sizeof(to->sin_zero));
    h->msg_name = to;
    h->msg_namelen = sizeof(*to);
  }
  h->msg_iov = iov;
  h->msg_iovlen = iovlen;
  bool pktinfo = m[S_SRC_ADDR] != 0 || m[S_IFINDEX] != 0;
  size_t space = (pktinfo ? CMSG_SPACE(sizeof(struct in_pktinfo)) : 0) + (segment > 0 ? CMSG_SPACE(sizeof(uint16_t)) : 0);
  if (space == 0) return;
  memset(control, 0, space);
  h->msg_control = control;
  h->msg_controllen = space;
  struct cmsghdr *c = CMSG_FIRSTHDR(h);
  if (pktinfo) {
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
    struct in_pktinfo info = {.ipi_ifindex = (int)m[S_IFINDEX], .ipi_spec_dst.s_addr = htonl(m[S_SRC_ADDR])};
    memcpy(CMSG_DATA(c), &info, sizeof(info));
    c = CMSG_NXTHDR(h, c);
  }
  if (segment > 0) {
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    memcpy(CMSG_DATA(c), &segment, sizeof(segment));
  }
}

// Sends argv[1] to the destination, source and interface in argv[2..5] (as js_send takes them);
// *sent is the byte count or -errno.
static napi_status send_from_args(napi_env env, dn_socket *s, napi_value *argv, ssize_t *sent) {
  void *data;
  size_t len;
  napi_typedarray_type type;
  napi_value ab;
  size_t offset;
  napi_status status = napi_get_typedarray_info(env, argv[1], &type, &len, &data, &ab, &offset);
  static const int slots[4] = {S_ADDR, S_PORT, S_SRC_ADDR, S_IFINDEX};
  uint32_t m[SEND_SLOTS];
  for (int i = 0; i < 4 && status == napi_ok; i++) status = napi_get_value_uint32(env, argv[2 + i], &m[slots[i]]);
  if (status != napi_ok) return status;
  struct msghdr h;
  struct sockaddr_in to;
  struct iovec iov = {.iov_base = data, .iov_len = len};
  uint8_t control[SEND_CONTROL_SPACE];
  prepare_send(s, &h, &to, &iov, 1, control, m, 0);
  ssize_t n;
  do n = sendmsg(s->fd, &h, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  *sent = n < 0 ? -errno : n;
  return napi_ok;
}

// send(handle, data, address, port, sourceAddress, ifindex) -> bytes sent | -errno
static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  dn_socket *s = get_socket(env, argv[0]);
  if (s == NULL) return NULL;
  if (s->fd < 0 || s->closing) return make_int(env, -EBADF);
  ssize_t n;
  CHECK(send_from_args(env, s, argv, &n));
  return make_int(env, n);
}

// Errors with which a kernel refuses a GSO send as such while the same datagrams may go one by
// one: EIO (device without checksum offload, IPsec route), EINVAL (too many segments, SO_NO_CHECK;
// older kernels also for a segment over the MTU), EMSGSIZE (segment over the route MTU),
// EOPNOTSUPP.
static bool is_gso_refusal(int err) {
  return err == EIO || err == EINVAL || err == EMSGSIZE || err == EOPNOTSUPP;
}

// What send_messages returns when the kernel refused the first message as a GSO run: GSO is then
// off for the socket and the caller sends the same datagrams again, one message each.
#define GSO_REFUSED INT_MIN

// One sendmmsg of prepared messages (message i carries datagrams_in[i] datagrams), retried on
// EINTR. Returns the messages sent (their datagrams added to *datagrams_sent), -errno if none
// was, or GSO_REFUSED.
static int send_messages(dn_socket *s, struct mmsghdr *msgs, uint32_t nmsgs, const uint32_t *datagrams_in, uint32_t *datagrams_sent) {
  int n;
  do n = sendmmsg(s->fd, msgs, nmsgs, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (datagrams_in[0] > 1 && is_gso_refusal(errno)) {
      s->gso = false;  // for good
      return GSO_REFUSED;
    }
    return -errno;
  }
  *datagrams_sent = 0;
  for (int i = 0; i < n; i++) {
    *datagrams_sent += datagrams_in[i];
    if (datagrams_in[i] > 1) s->gso_sends++;
  }
  return n;
}

// The TFTP pump's window: window_size DATA datagrams of block_size + 4 bytes, each a 4-byte header
// and block_size bytes of `bytes` (two iovecs, no copy), in GSO runs as sendBatch makes them.
// Returns the datagrams the kernel took (> 0), or -errno if it took none.
static int pump_send_window(dn_socket *s, const uint8_t *bytes) {
  dn_pump *p = &s->pump;
  uint32_t count = p->window_size, segment = p->block_size + 4;
  uint8_t headers[PUMP_MAX_WINDOW][4];
  struct iovec iovs[2 * PUMP_MAX_WINDOW];
  struct mmsghdr msgs[PUMP_MAX_WINDOW];
  struct sockaddr_in names[PUMP_MAX_WINDOW];
  uint8_t controls[PUMP_MAX_WINDOW][SEND_CONTROL_SPACE];
  uint32_t datagrams_in[PUMP_MAX_WINDOW];
  uint32_t m[SEND_SLOTS] = {[S_ADDR] = p->peer_addr, [S_PORT] = p->peer_port, [S_SRC_ADDR] = 0, [S_IFINDEX] = 0};
  for (uint32_t k = 0; k < count; k++) {
    uint16_t block = (uint16_t)(p->next_block + k);
    headers[k][0] = 0;
    headers[k][1] = OP_DATA;
    headers[k][2] = (uint8_t)(block >> 8);
    headers[k][3] = (uint8_t)block;
    iovs[2 * k] = (struct iovec){.iov_base = headers[k], .iov_len = 4};
    iovs[2 * k + 1] = (struct iovec){.iov_base = (void *)(bytes + (size_t)k * p->block_size), .iov_len = p->block_size};
  }
  for (;;) {
    uint32_t per_message = s->gso ? GSO_MAX_BYTES / segment : 1;
    if (per_message > GSO_MAX_SEGMENTS) per_message = GSO_MAX_SEGMENTS;
    if (per_message == 0) per_message = 1;
    uint32_t nmsgs = 0;
    for (uint32_t first = 0; first < count; first += per_message) {
      uint32_t in = count - first < per_message ? count - first : per_message;
      datagrams_in[nmsgs] = in;
      prepare_send(s, &msgs[nmsgs].msg_hdr, &names[nmsgs], &iovs[2 * first], 2 * in, controls[nmsgs], m, in > 1 ? (uint16_t)segment : 0);
      msgs[nmsgs].msg_len = 0;
      nmsgs++;
    }
    uint32_t sent;
    int n = send_messages(s, msgs, nmsgs, datagrams_in, &sent);
    if (n == GSO_REFUSED) continue;  // the same window again, one message per datagram
    return n < 0 ? n : (int)sent;
  }
}

// Answers received message i (its payload at `offset` in the slab) if it is the client's ACK of
// the outstanding window and the data holds a whole next window: sends that window and returns
// true. Anything else is left alone (false) for JS and the protocol core: another source, another
// opcode or block number (duplicate, partial, old), a truncated or short datagram, the end of the
// data (the last, short block is always the core's), or a send the kernel refused outright.
static bool pump_answer(dn_socket *s, int i, size_t offset) {
  dn_pump *p = &s->pump;
  const uint32_t *meta = &s->meta[(size_t)i * META_SLOTS];
  const uint8_t *d = s->slab + offset;
  if ((meta[M_FLAGS] & FLAG_TRUNCATED) || meta[M_LEN] < 4 || meta[M_SRC_ADDR] != p->peer_addr || meta[M_SRC_PORT] != p->peer_port) return false;
  if (d[0] != 0 || d[1] != OP_ACK || (uint16_t)((d[2] << 8) | d[3]) != (uint16_t)(p->next_block - 1)) return false;
  size_t window_bytes = (size_t)p->window_size * p->block_size;
  if (p->data_len - p->pos < window_bytes) return false;
  uint64_t acked_at = uv_hrtime();
  int sent = pump_send_window(s, p->data + p->pos);
  if (sent < 0) return false;
  if (p->timed) p->last_rtt_ms = (double)(acked_at - p->last_send_ns) / 1e6;
  if ((uint32_t)sent < p->window_size) p->short_sends++;  // the rest counts as lost: the core's timer resends
  p->windows++;
  p->pos += window_bytes;
  p->next_block = (uint16_t)(p->next_block + p->window_size);
  p->last_send_ns = uv_hrtime();
  p->timed = true;
  return true;
}

// Reads while the pump is armed: every ACK it answers is followed at once by a read of one
// message without waiting (a client on the same CPU, woken by the DATA, has often ACKed before
// sendmmsg returns), up to PUMP_ROUNDS. The first message the pump does not answer disarms it and
// goes to JS with the rest of its batch, as an ordinary batch event.
static void pump_receive(dn_socket *s) {
  dn_pump *p = &s->pump;
  for (int round = 0; round < PUMP_ROUNDS && p->armed && !s->closing; round++) {
    if (round > 0 && p->read_score == 0 && ++p->probe % PUMP_PROBE != 0) return;  // the poll will say
    int n = receive_once(s, round == 0 ? s->batch_size : 1);
    if (n < 0) {
      call_js(s, s->callback_ref, EV_ERROR, n);
      return;
    }
    if (round > 0 && n > 0) p->read_score = p->read_score + PUMP_HIT > PUMP_SCORE_MAX ? PUMP_SCORE_MAX : p->read_score + PUMP_HIT;
    else if (round > 0 && p->read_score > 0) p->read_score--;
    if (n == 0) return;
    int answered = 0;
    size_t offset = 0;
    while (answered < n && pump_answer(s, answered, offset)) offset += s->meta[(size_t)answered++ * META_SLOTS + M_LEN];
    if (answered == n) continue;
    p->armed = false;
    int rest = n - answered;
    size_t bytes = 0;
    for (int i = answered; i < n; i++) bytes += s->meta[(size_t)i * META_SLOTS + M_LEN];
    if (answered > 0) {
      memmove(s->meta, s->meta + (size_t)answered * META_SLOTS, (size_t)rest * META_SLOTS * sizeof(uint32_t));
      memmove(s->slab, s->slab + offset, bytes);
    }
    call_js(s, s->callback_ref, EV_BATCH, rest);
    return;
  }
}


static napi_status fetch_buffer(napi_env env, napi_value buffers, uint32_t index, struct iovec *iov) {
  napi_value buf, ab;
  napi_typedarray_type type;
  size_t offset;
  napi_status status = napi_get_element(env, buffers, index, &buf);
  if (status != napi_ok) return status;
  return napi_get_typedarray_info(env, buf, &type, &iov->iov_len, &iov->iov_base, &ab, &offset);
}

// sendBatch(handle, buffers: Uint8Array[], meta: Uint32Array, start, count)
//   -> number of datagrams sent from index start (> 0), or -errno for the datagram at start.
// A run of datagrams to the same destination (same meta) of equal size — the last may be shorter
// — goes as one GSO message (e.g. a TFTP window of full blocks). sendmmsg stops at the first
// failure; the caller retries from there to get its errno. A GSO message the kernel refuses as
// such turns GSO off for this socket and the datagrams are sent again one message each.
static napi_value js_send_batch(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  dn_socket *s = get_socket(env, argv[0]);
  if (s == NULL) return NULL;
  if (s->fd < 0 || s->closing) return make_int(env, -EBADF);
  uint32_t *meta;
  size_t meta_len, meta_offset;
  napi_typedarray_type type;
  napi_value ab;
  CHECK(napi_get_typedarray_info(env, argv[2], &type, &meta_len, (void **)&meta, &ab, &meta_offset));
  uint32_t start, count;
  CHECK(napi_get_value_uint32(env, argv[3], &start));
  CHECK(napi_get_value_uint32(env, argv[4], &count));
  if (type != napi_uint32_array || (size_t)(start + count) * SEND_SLOTS > meta_len) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "dgram-native: sendBatch metadata too short");
    return NULL;
  }
  struct mmsghdr msgs[SEND_CHUNK];
  struct sockaddr_in names[SEND_CHUNK];
  uint8_t controls[SEND_CHUNK][SEND_CONTROL_SPACE];
  uint32_t datagrams_in[SEND_CHUNK];
  struct iovec iovs[SEND_MAX_DATAGRAMS];
  uint32_t sent = 0;
  while (sent < count) {
    uint32_t base = start + sent;  // iovs[k] holds datagram base + k
    uint32_t available = count - sent < SEND_MAX_DATAGRAMS ? count - sent : SEND_MAX_DATAGRAMS;
    uint32_t fetched = 0, used = 0, nmsgs = 0;
    while (nmsgs < SEND_CHUNK && used < available) {
      // Each datagram's buffer is looked up once, also when it turned out to start a new message.
      if (fetched == used) CHECK(fetch_buffer(env, argv[1], base + fetched++, &iovs[used]));
      uint32_t first = used++;
      const uint32_t *m = &meta[(size_t)(base + first) * SEND_SLOTS];
      size_t segment = iovs[first].iov_len, total = segment;
      if (s->gso && segment > 0 && segment <= GSO_MAX_BYTES) {
        while (used < available && used - first < GSO_MAX_SEGMENTS &&
               memcmp(&meta[(size_t)(base + used) * SEND_SLOTS], m, SEND_SLOTS * sizeof(uint32_t)) == 0) {
          if (fetched == used) CHECK(fetch_buffer(env, argv[1], base + fetched++, &iovs[used]));
          size_t len = iovs[used].iov_len;
          if (len == 0 || len > segment || total + len > GSO_MAX_BYTES) break;
          used++;
          total += len;
          if (len < segment) break;  // a shorter datagram can only end a run
        }
      }
      datagrams_in[nmsgs] = used - first;
      prepare_send(s, &msgs[nmsgs].msg_hdr, &names[nmsgs], &iovs[first], used - first, controls[nmsgs], m,
                   used - first > 1 ? (uint16_t)segment : 0);
      msgs[nmsgs].msg_len = 0;
      nmsgs++;
    }
    uint32_t run_sent;
    int n = send_messages(s, msgs, nmsgs, datagrams_in, &run_sent);
    if (n == GSO_REFUSED) continue;  // the same datagrams again, without GSO
    if (n < 0) return make_int(env, sent > 0 ? (int64_t)sent : n);
    sent += run_sent;
    if (n < (int)nmsgs) break;
  }
  return make_int(env, sent);
}

// Lets go of what the pump reads from: the data Buffer's reference, the file's mapping.
static void pump_release_source(napi_env env, dn_pump *p) {
  if (p->data_ref != NULL) {
    napi_delete_reference(env, p->data_ref);
    p->data_ref = NULL;
  }
  if (p->map != NULL) {
    munmap(p->map, p->map_len);
    p->map = NULL;
  }
  p->data = NULL;
}

// Reads the arguments common to both starts (argv[first..first+4]: address, port, blockSize,
// windowSize, nextBlock) into the pump; false (-EINVAL in *rc) if the pump cannot take them.
static bool pump_read_start(napi_env env, dn_socket *s, napi_value *argv, int *rc) {
  uint32_t address, port, block_size, window_size, next_block;
  if (napi_get_value_uint32(env, argv[0], &address) != napi_ok || napi_get_value_uint32(env, argv[1], &port) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &block_size) != napi_ok || napi_get_value_uint32(env, argv[3], &window_size) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &next_block) != napi_ok) {
    *rc = -EINVAL;
    return false;
  }
  if (s->gro || window_size == 0 || window_size > PUMP_MAX_WINDOW || block_size == 0 || block_size > 65464 || port > 65535) {
    *rc = -EINVAL;
    return false;
  }
  dn_pump *p = &s->pump;
  p->peer_addr = address;
  p->peer_port = port;
  p->block_size = block_size;
  p->window_size = window_size;
  p->next_block = (uint16_t)next_block;
  p->pos = 0;
  p->timed = false;  // the outstanding window was sent by JS: no RTT sample from its ACK
  return true;
}

// tftpPumpStart(handle, data: Buffer, address, port, blockSize, windowSize, nextBlock) -> 0 | -errno
// Arms the TFTP send pump of a read transfer's socket. The state it starts from is the protocol
// core's: a full window of blockSize-byte blocks up to nextBlock - 1 (wire numbers, mod 65536) is
// outstanding, and `data` holds the file's bytes from block nextBlock on (kept referenced until the
// pump is stopped or rearmed). On each readable event the pump then answers the client's ACK of the
// window's last block with the next window from `data` (see pump_receive); JS is called only for
// what the pump does not answer, which also disarms it. -EINVAL: window over PUMP_MAX_WINDOW, block
// size 0 or over 65464, or a GRO socket (a message may hold several datagrams).
static napi_value js_tftp_pump_start(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  dn_socket *s = get_socket(env, argv[0]);
  if (s == NULL) return NULL;
  if (s->fd < 0 || s->closing) return make_int(env, -EBADF);
  void *data;
  size_t len;
  CHECK(napi_get_buffer_info(env, argv[1], &data, &len));
  dn_pump *p = &s->pump;
  p->armed = false;
  pump_release_source(env, p);
  int rc = 0;
  if (!pump_read_start(env, s, &argv[2], &rc)) return make_int(env, rc);
  CHECK(napi_create_reference(env, argv[1], 1, &p->data_ref));
  p->data = data;
  p->data_len = len;
  p->armed = true;
  return make_int(env, 0);
}

// tftpPumpStartFile(handle, fd, offset, length, address, port, blockSize, windowSize, nextBlock) -> 0 | -errno
// As tftpPumpStart, with the file's bytes from block nextBlock on being `length` bytes of `fd` at
// `offset`. The pump maps them read-only (its own mapping: the caller may close fd at any time; it
// is unmapped when the pump stops, is rearmed or the socket closes) and sends each window straight
// from the page cache: the kernel copies each block once, into the datagram, where a read into a
// buffer first would copy it twice, and no hand-back to JS is needed for more bytes. Only the
// kernel touches the mapping (sendmmsg): a file cut short meanwhile makes that send fail with
// EFAULT (no SIGBUS, which only a user-space access would raise), and the ACK goes to JS, whose
// read reports the short file. Bytes past a new end inside the end's last page read as zeros: a
// file rewritten in place mid-transfer is inconsistent with any read; replace files by rename.
static napi_value js_tftp_pump_start_file(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  dn_socket *s = get_socket(env, argv[0]);
  if (s == NULL) return NULL;
  if (s->fd < 0 || s->closing) return make_int(env, -EBADF);
  int32_t file_fd;
  int64_t offset, length;
  CHECK(napi_get_value_int32(env, argv[1], &file_fd));
  CHECK(napi_get_value_int64(env, argv[2], &offset));
  CHECK(napi_get_value_int64(env, argv[3], &length));
  dn_pump *p = &s->pump;
  p->armed = false;
  pump_release_source(env, p);
  if (file_fd < 0 || offset < 0 || length <= 0) return make_int(env, -EINVAL);
  int rc = 0;
  if (!pump_read_start(env, s, &argv[4], &rc)) return make_int(env, rc);
  int64_t page = sysconf(_SC_PAGESIZE);
  int64_t aligned = offset - offset % page;
  size_t map_len = (size_t)(length + offset - aligned);
  void *map = mmap(NULL, map_len, PROT_READ, MAP_SHARED, file_fd, (off_t)aligned);
  if (map == MAP_FAILED) return make_int(env, -errno);
  p->map = map;
  p->map_len = map_len;
  p->data = (uint8_t *)map + (offset - aligned);
  p->data_len = (size_t)length;
  p->armed = true;
  return make_int(env, 0);
}

// tftpPumpStop(handle) -> [windows, lastRttMs (-1: none), msSinceLastSend, shortSends]
// Disarms the pump and returns its progress since the last stop, which the protocol core then
// catches up on: `windows` window-end ACKs were each answered with the next window, the last
// window sent msSinceLastSend ago is outstanding; shortSends windows the kernel took only in part.
static napi_value js_tftp_pump_stop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], arr, v;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  dn_socket *s = get_socket(env, argv[0]);
  if (s == NULL) return NULL;
  dn_pump *p = &s->pump;
  p->armed = false;
  pump_release_source(env, p);
  double values[4] = {p->windows, p->last_rtt_ms, p->windows > 0 ? (double)(uv_hrtime() - p->last_send_ns) / 1e6 : 0, p->short_sends};
  CHECK(napi_create_array_with_length(env, 4, &arr));
  for (uint32_t i = 0; i < 4; i++) {
    CHECK(napi_create_double(env, values[i], &v));
    CHECK(napi_set_element(env, arr, i, v));
  }
  p->windows = 0;
  p->short_sends = 0;
  p->last_rtt_ms = -1;
  return arr;
}

// connect(handle, address, port) -> 0 | -errno
// Connects the socket to its one peer: the kernel then delivers to it only that peer's datagrams
// (and, in a reuseport group, prefers it for them over unconnected members, which still get
// everyone else's), and sends to the peer go without a route lookup (see prepare_send).
static napi_value js_connect(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  uint32_t address, port;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  dn_socket *s = get_socket(env, argv[0]);
  if (s == NULL) return NULL;
  CHECK(napi_get_value_uint32(env, argv[1], &address));
  CHECK(napi_get_value_uint32(env, argv[2], &port));
  if (s->fd < 0 || s->closing) return make_int(env, -EBADF);
  if (port == 0 || port > 65535) return make_int(env, -EINVAL);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(address)};
  int rc;
  do rc = connect(s->fd, (struct sockaddr *)&to, sizeof(to));
  while (rc != 0 && errno == EINTR);
  if (rc != 0) return make_int(env, -errno);
  s->connected = true;
  s->peer_addr = address;
  s->peer_port = port;
  return make_int(env, 0);
}

// sendStats(handle) -> [gso (1 while sendBatch uses GSO), GSO messages sent]
static napi_value js_send_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], arr;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  dn_socket *s = get_socket(env, argv[0]);
  if (s == NULL) return NULL;
  CHECK(napi_create_array_with_length(env, 2, &arr));
  napi_set_element(env, arr, 0, make_int(env, s->gso));
  napi_value sends;
  CHECK(napi_create_double(env, s->gso_sends, &sends));
  napi_set_element(env, arr, 1, sends);
  return arr;
}

// watchWritable(handle, on): while the wrapper has datagrams queued after EAGAIN
static napi_value js_watch_writable(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  bool on;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  dn_socket *s = get_socket(env, argv[0]);
  if (s == NULL) return NULL;
  CHECK(napi_get_value_bool(env, argv[1], &on));
  if (s->closing) return NULL;
  s->watch_writable = on;
  update_poll(s);
  return NULL;
}

// setRef(handle, on): whether an open socket keeps the event loop alive
static napi_value js_set_ref(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  bool on;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  dn_socket *s = get_socket(env, argv[0]);
  if (s == NULL) return NULL;
  CHECK(napi_get_value_bool(env, argv[1], &on));
  if (s->closing) return NULL;
  // While reading is paused the poll may be stopped and only the timer is active: both follow.
  if (on) uv_ref((uv_handle_t *)&s->poll);
  else uv_unref((uv_handle_t *)&s->poll);
  if (s->coalesce_ms > 0) {
    if (on) uv_ref((uv_handle_t *)&s->coalesce_timer);
    else uv_unref((uv_handle_t *)&s->coalesce_timer);
  }
  return NULL;
}

// close(handle, callback): stops polling at once; the fd is closed and callback called once
// libuv has let go of the handle (next loop iteration). Datagrams still queued in the kernel
// are discarded with the socket.
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  dn_socket *s = get_socket(env, argv[0]);
  if (s == NULL) return NULL;
  if (s->closing) return NULL;
  s->closing = true;
  s->pump.armed = false;
  pump_release_source(env, &s->pump);
  CHECK(napi_create_reference(env, argv[1], 1, &s->close_cb_ref));
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, on_closed);
  if (s->coalesce_ms > 0) {
    uv_timer_stop(&s->coalesce_timer);
    uv_close((uv_handle_t *)&s->coalesce_timer, on_closed);
  }
  return NULL;
}

// interfaceName(index) -> string | null
static napi_value js_interface_name(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  uint32_t index;
  char name[IF_NAMESIZE];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_uint32(env, argv[0], &index));
  if (index == 0 || if_indextoname(index, name) == NULL) {
    CHECK(napi_get_null(env, &result));
    return result;
  }
  CHECK(napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &result));
  return result;
}

// interfaceIndex(name) -> index | 0
static napi_value js_interface_index(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  char name[IF_NAMESIZE] = {0};
  size_t len = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_string_utf8(env, argv[0], NULL, 0, &len));
  if (len == 0 || len >= IF_NAMESIZE) return make_int(env, 0);
  CHECK(napi_get_value_string_utf8(env, argv[0], name, sizeof(name), &len));
  return make_int(env, if_nametoindex(name));
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
      {"info", NULL, js_info, NULL, NULL, NULL, napi_default, NULL},
      {"send", NULL, js_send, NULL, NULL, NULL, napi_default, NULL},
      {"sendBatch", NULL, js_send_batch, NULL, NULL, NULL, napi_default, NULL},
      {"tftpPumpStart", NULL, js_tftp_pump_start, NULL, NULL, NULL, napi_default, NULL},
      {"tftpPumpStartFile", NULL, js_tftp_pump_start_file, NULL, NULL, NULL, napi_default, NULL},
      {"tftpPumpStop", NULL, js_tftp_pump_stop, NULL, NULL, NULL, napi_default, NULL},
      {"connect", NULL, js_connect, NULL, NULL, NULL, napi_default, NULL},
      {"sendStats", NULL, js_send_stats, NULL, NULL, NULL, napi_default, NULL},
      {"watchWritable", NULL, js_watch_writable, NULL, NULL, NULL, napi_default, NULL},
      {"setRef", NULL, js_set_ref, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
      {"interfaceName", NULL, js_interface_name, NULL, NULL, NULL, napi_default, NULL},
      {"interfaceIndex", NULL, js_interface_index, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value meta_slots;
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  napi_create_uint32(env, META_SLOTS, &meta_slots);
  napi_set_named_property(env, exports, "META_SLOTS", meta_slots);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
