// dgram-native: IPv4 UDP sockets with the options node:dgram lacks (SO_BINDTODEVICE, IP_PKTINFO,
// SO_REUSEPORT) and batched I/O (recvmmsg/sendmmsg), driven by a uv_poll on libuv's loop.
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
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SO_RXQ_OVFL
#define SO_RXQ_OVFL 40
#endif

// Per-datagram metadata slots; lib/index.ts mirrors this layout (META_* constants).
enum { M_LEN, M_FLAGS, M_SRC_ADDR, M_SRC_PORT, M_DST_ADDR, M_LOCAL_ADDR, M_IFINDEX, M_DROPS, META_SLOTS };
enum { FLAG_TRUNCATED = 1, FLAG_PKTINFO = 2 };
// Per-datagram slots of the sendBatch metadata array.
enum { S_ADDR, S_PORT, S_SRC_ADDR, S_IFINDEX, SEND_SLOTS };
// First argument of the JS event callback.
enum { EV_BATCH = 0, EV_WRITABLE = 1, EV_ERROR = 2 };

// Readiness is level-triggered: after this many full batches we return to the loop so that one
// flooded socket cannot starve timers and other sockets.
#define MAX_BATCHES_PER_WAKEUP 8
#define SEND_CHUNK 64
#define CONTROL_SPACE (CMSG_SPACE(sizeof(struct in_pktinfo)) + CMSG_SPACE(sizeof(uint32_t)))

typedef struct {
  int fd;
  bool polling;   // uv_poll initialised and not yet closed
  bool closing;   // close() called; no more callbacks into JS except the close callback
  bool closed;    // uv_close completed, fd closed, references released
  int poll_events;
  uv_poll_t poll;
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
  uint32_t max_datagram_size;
  struct mmsghdr *msgs;
  struct iovec *iovs;
  struct sockaddr_in *names;
  uint8_t *controls;
} dn_socket;

#define CHECK(call)                                                                   \
  do {                                                                                \
    if ((call) != napi_ok) {                                                          \
      napi_throw_error(env, "ERR_DGRAM_NATIVE", "N-API call failed: " #call);         \
      return NULL;                                                                    \
    }                                                                                 \
  } while (0)

static void free_socket(dn_socket *s) {
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
    }
  }
  meta[M_FLAGS] = flags;
}

static void receive_batches(dn_socket *s) {
  for (int round = 0; round < MAX_BATCHES_PER_WAKEUP && !s->closing; round++) {
    for (uint32_t i = 0; i < s->batch_size; i++) {
      struct msghdr *h = &s->msgs[i].msg_hdr;
      h->msg_namelen = sizeof(struct sockaddr_in);
      h->msg_controllen = CONTROL_SPACE;
      h->msg_flags = 0;
      s->meta[i * META_SLOTS + M_DROPS] = 0;
    }
    int n = recvmmsg(s->fd, s->msgs, s->batch_size, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) call_js(s, s->callback_ref, EV_ERROR, -errno);
      return;
    }
    for (int i = 0; i < n; i++) fill_meta(s, (unsigned)i);
    call_js(s, s->callback_ref, EV_BATCH, n);
    if ((uint32_t)n < s->batch_size) return;  // queue drained: skip the syscall that says so
  }
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  dn_socket *s = handle->data;
  if (s->closing) return;
  if (status < 0) {
    call_js(s, s->callback_ref, EV_ERROR, status);
    return;
  }
  if ((events & UV_WRITABLE) && !s->closing) call_js(s, s->callback_ref, EV_WRITABLE, 0);
  if ((events & UV_READABLE) && !s->closing) receive_batches(s);
}

static void release_refs(dn_socket *s) {
  napi_env env = s->env;
  napi_ref *refs[] = {&s->callback_ref, &s->slab_ref, &s->meta_ref, &s->close_cb_ref};
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
  uint32_t max_datagram_size = get_u32_prop(env, opts, "maxDatagramSize", 2048);
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
  if (batch_size == 0 || batch_size > 1024 || max_datagram_size == 0 || max_datagram_size > 65535 ||
      slab_len < (size_t)batch_size * max_datagram_size || meta_type != napi_uint32_array ||
      meta_len < (size_t)batch_size * META_SLOTS) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "dgram-native: slab/meta do not fit batchSize x maxDatagramSize");
    return NULL;
  }

  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return failure(env, -1, errno, "socket");
  int err;
  if (get_u32_prop(env, opts, "reuseAddr", 0) && (err = set_int_option(fd, SOL_SOCKET, SO_REUSEADDR, 1)))
    return failure(env, fd, err, "setsockopt(SO_REUSEADDR)");
  if (get_u32_prop(env, opts, "reusePort", 0) && (err = set_int_option(fd, SOL_SOCKET, SO_REUSEPORT, 1)))
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
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(bind_address)};
  if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) return failure(env, fd, errno, "bind");

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
  s->max_datagram_size = max_datagram_size;
  for (uint32_t i = 0; i < batch_size; i++) {
    s->iovs[i].iov_base = s->slab + (size_t)i * max_datagram_size;
    s->iovs[i].iov_len = max_datagram_size;
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
  s->poll_events = UV_READABLE;
  uv_poll_start(&s->poll, s->poll_events, on_poll);
  CHECK(napi_create_reference(env, handle, 1, &s->self_ref));

  napi_value result;
  CHECK(napi_create_object(env, &result));
  CHECK(napi_set_named_property(env, result, "handle", handle));
  return result;
}

// info(handle) -> [address, port, recvBufferSize, sendBufferSize] (sizes as the kernel reports
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
  CHECK(napi_create_array_with_length(env, 4, &arr));
  napi_set_element(env, arr, 0, make_int(env, ntohl(sin.sin_addr.s_addr)));
  napi_set_element(env, arr, 1, make_int(env, ntohs(sin.sin_port)));
  napi_set_element(env, arr, 2, make_int(env, rcv));
  napi_set_element(env, arr, 3, make_int(env, snd));
  return arr;
}

// Fills one outgoing msghdr. The IP_PKTINFO cmsg picks the source address and/or the outgoing
// interface for this datagram only (so a reply to a broadcast leaves where the request came in).
static void prepare_send(struct msghdr *h, struct sockaddr_in *to, struct iovec *iov, uint8_t *control,
                         uint32_t addr, uint32_t port, uint32_t src_addr, uint32_t ifindex) {
  memset(h, 0, sizeof(*h));
  to->sin_family = AF_INET;
  to->sin_port = htons((uint16_t)port);
  to->sin_addr.s_addr = htonl(addr);
  memset(to->sin_zero, 0, sizeof(to->sin_zero));
  h->msg_name = to;
  h->msg_namelen = sizeof(*to);
  h->msg_iov = iov;
  h->msg_iovlen = 1;
  if (src_addr != 0 || ifindex != 0) {
    memset(control, 0, CMSG_SPACE(sizeof(struct in_pktinfo)));
    h->msg_control = control;
    h->msg_controllen = CMSG_SPACE(sizeof(struct in_pktinfo));
    struct cmsghdr *c = CMSG_FIRSTHDR(h);
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
    struct in_pktinfo info = {.ipi_ifindex = (int)ifindex, .ipi_spec_dst.s_addr = htonl(src_addr)};
    memcpy(CMSG_DATA(c), &info, sizeof(info));
  }
}

// send(handle, data, address, port, sourceAddress, ifindex) -> bytes sent | -errno
static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  dn_socket *s = get_socket(env, argv[0]);
  if (s == NULL) return NULL;
  if (s->fd < 0 || s->closing) return make_int(env, -EBADF);
  void *data;
  size_t len;
  napi_typedarray_type type;
  napi_value ab;
  size_t offset;
  CHECK(napi_get_typedarray_info(env, argv[1], &type, &len, &data, &ab, &offset));
  uint32_t addr, port, src, ifindex;
  CHECK(napi_get_value_uint32(env, argv[2], &addr));
  CHECK(napi_get_value_uint32(env, argv[3], &port));
  CHECK(napi_get_value_uint32(env, argv[4], &src));
  CHECK(napi_get_value_uint32(env, argv[5], &ifindex));
  struct msghdr h;
  struct sockaddr_in to;
  struct iovec iov = {.iov_base = data, .iov_len = len};
  uint8_t control[CMSG_SPACE(sizeof(struct in_pktinfo))];
  prepare_send(&h, &to, &iov, control, addr, port, src, ifindex);
  ssize_t n;
  do n = sendmsg(s->fd, &h, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return make_int(env, n < 0 ? -errno : n);
}

// sendBatch(handle, buffers: Uint8Array[], meta: Uint32Array, start, count)
//   -> number of datagrams sent from index start (> 0), or -errno for the datagram at start.
// sendmmsg stops at the first failure; the caller retries from there to get its errno.
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
  struct iovec iovs[SEND_CHUNK];
  uint8_t controls[SEND_CHUNK][CMSG_SPACE(sizeof(struct in_pktinfo))];
  uint32_t sent = 0;
  while (sent < count) {
    uint32_t chunk = count - sent < SEND_CHUNK ? count - sent : SEND_CHUNK;
    for (uint32_t i = 0; i < chunk; i++) {
      uint32_t index = start + sent + i;
      napi_value buf;
      void *data;
      size_t len, offset;
      CHECK(napi_get_element(env, argv[1], index, &buf));
      CHECK(napi_get_typedarray_info(env, buf, &type, &len, &data, &ab, &offset));
      iovs[i].iov_base = data;
      iovs[i].iov_len = len;
      const uint32_t *m = &meta[(size_t)index * SEND_SLOTS];
      prepare_send(&msgs[i].msg_hdr, &names[i], &iovs[i], controls[i], m[S_ADDR], m[S_PORT], m[S_SRC_ADDR], m[S_IFINDEX]);
      msgs[i].msg_len = 0;
    }
    int n;
    do n = sendmmsg(s->fd, msgs, chunk, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0) return make_int(env, sent > 0 ? (int64_t)sent : -errno);
    sent += (uint32_t)n;
    if ((uint32_t)n < chunk) break;
  }
  return make_int(env, sent);
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
  int events = on ? (UV_READABLE | UV_WRITABLE) : UV_READABLE;
  if (events != s->poll_events) {
    s->poll_events = events;
    uv_poll_start(&s->poll, events, on_poll);
  }
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
  if (on) uv_ref((uv_handle_t *)&s->poll);
  else uv_unref((uv_handle_t *)&s->poll);
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
  CHECK(napi_create_reference(env, argv[1], 1, &s->close_cb_ref));
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, on_closed);
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
