/* Many WebSocket followers in one process, for the real-time benchmark (bench/realtime.py).
 *
 * A Python client spends more CPU receiving a frame than the server spends sending it, and on a
 * two-core machine that competes with the server being measured. This one costs little more than
 * the kernel's own work: epoll, one read per frame, a timestamp.
 *
 *   wsfollowers HOST PORT TOKEN CONVERSATION_ID
 *
 * Commands on stdin, one a line; answers on stdout:
 *   connect N   open N more sockets, each authenticated and following the conversation -> "ok TOTAL"
 *   arrivals    the (seq, CLOCK_MONOTONIC seconds) of every message.created received since the
 *               last call, one "seq time" a line                                 -> lines, then "end"
 *   cpu         "user system" CPU seconds of this process
 *   close       close every socket and exit
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int fd;
    unsigned char *buf;
    size_t len, cap;
} Conn;

static Conn *conns;
static size_t nconns, capconns;
static long *arr_seq;
static double *arr_time;
static size_t narr, caparr;
static const char *host, *token, *cid;
static int port;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void send_all(int fd, const unsigned char *data, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) continue;
            die("write");
        }
        data += n;
        len -= (size_t)n;
    }
}

/* A client frame: FIN, the opcode, masked (with a zero mask: masking is required, secrecy is not). */
static void send_frame(int fd, int opcode, const char *payload, size_t len) {
    unsigned char head[14];
    size_t h = 0;
    head[h++] = 0x80 | (unsigned char)opcode;
    if (len < 126) {
        head[h++] = 0x80 | (unsigned char)len;
    } else {
        head[h++] = 0x80 | 126;
        head[h++] = (unsigned char)(len >> 8);
        head[h++] = (unsigned char)len;
    }
    memset(head + h, 0, 4);
    h += 4;
    unsigned char *frame = malloc(h + len);
    memcpy(frame, head, h);
    memcpy(frame + h, payload, len);
    send_all(fd, frame, h + len);
    free(frame);
}

/* Read one whole text frame, blocking (only while a socket is being opened). */
static void read_frame(int fd, char *out, size_t cap) {
    unsigned char head[4];
    if (read(fd, head, 2) != 2) die("read frame header");
    size_t len = head[1] & 0x7f;
    if (len == 126) {
        if (read(fd, head + 2, 2) != 2) die("read frame length");
        len = ((size_t)head[2] << 8) | head[3];
    }
    if (len >= cap) die("frame too large");
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, out + got, len - got);
        if (n <= 0) die("read frame");
        got += (size_t)n;
    }
    out[len] = 0;
}

static void open_one(int epfd) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &addr.sin_addr);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char request[512];
    int n = snprintf(request, sizeof request,
                     "GET /v1/ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     host, port);
    send_all(fd, (unsigned char *)request, (size_t)n);
    char response[2048];
    size_t got = 0;
    while (got < 4 || memcmp(response + got - 4, "\r\n\r\n", 4) != 0) {
        if (got >= sizeof response - 1 || read(fd, response + got, 1) != 1) die("handshake");
        got++;
    }
    if (strncmp(response, "HTTP/1.1 101", 12) != 0) die("handshake refused");
    char frame[8192];
    n = snprintf(frame, sizeof frame, "{\"type\":\"auth\",\"token\":\"%s\"}", token);
    send_frame(fd, 1, frame, (size_t)n);
    read_frame(fd, frame, sizeof frame);
    if (!strstr(frame, "\"ready\"")) die("auth refused");
    n = snprintf(frame, sizeof frame, "{\"type\":\"subscribe\",\"id\":\"s\",\"conversation_id\":\"%s\"}", cid);
    send_frame(fd, 1, frame, (size_t)n);
    read_frame(fd, frame, sizeof frame);
    if (!strstr(frame, "\"subscribed\"")) die("subscribe refused");
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    if (nconns == capconns) {
        capconns = capconns ? capconns * 2 : 1024;
        conns = realloc(conns, capconns * sizeof *conns);
    }
    conns[nconns] = (Conn){.fd = fd};
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = nconns};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
    nconns++;
}

static void record(const unsigned char *payload, size_t len, double at) {
    static const char kind[] = "{\"type\":\"message.created\"";
    if (len < sizeof kind - 1 || memcmp(payload, kind, sizeof kind - 1) != 0) return;
    const char *seq = memmem(payload, len, "\"seq\":", 6);
    if (!seq) return;
    if (narr == caparr) {
        caparr = caparr ? caparr * 2 : 65536;
        arr_seq = realloc(arr_seq, caparr * sizeof *arr_seq);
        arr_time = realloc(arr_time, caparr * sizeof *arr_time);
    }
    arr_seq[narr] = strtol(seq + 6, NULL, 10);
    arr_time[narr] = at;
    narr++;
}

static void on_readable(Conn *c) {
    unsigned char chunk[65536];
    ssize_t n = read(c->fd, chunk, sizeof chunk);
    if (n <= 0) return;
    double at = now();
    if (c->len + (size_t)n > c->cap) {
        c->cap = (c->len + (size_t)n) * 2;
        c->buf = realloc(c->buf, c->cap);
    }
    memcpy(c->buf + c->len, chunk, (size_t)n);
    c->len += (size_t)n;
    size_t off = 0;
    while (c->len - off >= 2) {
        unsigned char *f = c->buf + off;
        int opcode = f[0] & 0x0f;
        size_t len = f[1] & 0x7f, h = 2;
        if (len == 126) {
            if (c->len - off < 4) break;
            len = ((size_t)f[2] << 8) | f[3];
            h = 4;
        } else if (len == 127) {
            if (c->len - off < 10) break;
            len = 0;
            for (int i = 0; i < 8; i++) len = (len << 8) | f[2 + i];
            h = 10;
        }
        if (c->len - off < h + len) break;
        if (opcode == 1) record(f + h, len, at);
        else if (opcode == 9) send_frame(c->fd, 10, (const char *)f + h, len);
        off += h + len;
    }
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s HOST PORT TOKEN CONVERSATION_ID\n", argv[0]);
        return 2;
    }
    host = argv[1];
    port = atoi(argv[2]);
    token = argv[3];
    cid = argv[4];
    struct rlimit lim;
    getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
    setvbuf(stdout, NULL, _IOFBF, 1 << 20);
    int epfd = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
    epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev);
    char line[256];
    size_t linelen = 0;
    struct epoll_event events[512];
    for (;;) {
        int n = epoll_wait(epfd, events, 512, -1);
        for (int i = 0; i < n; i++) {
            if (events[i].data.u64 != UINT64_MAX) {
                on_readable(&conns[events[i].data.u64]);
                continue;
            }
            ssize_t got = read(0, line + linelen, sizeof line - 1 - linelen);
            if (got <= 0) return 0;
            linelen += (size_t)got;
            char *end;
            while ((end = memchr(line, '\n', linelen)) != NULL) {
                *end = 0;
                if (strncmp(line, "connect ", 8) == 0) {
                    long more = atol(line + 8);
                    for (long k = 0; k < more; k++) open_one(epfd);
                    printf("ok %zu\n", nconns);
                } else if (strcmp(line, "arrivals") == 0) {
                    for (size_t k = 0; k < narr; k++) printf("%ld %.9f\n", arr_seq[k], arr_time[k]);
                    printf("end\n");
                    narr = 0;
                } else if (strcmp(line, "cpu") == 0) {
                    struct rusage ru;
                    getrusage(RUSAGE_SELF, &ru);
                    printf("%.6f %.6f\n", ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
                           ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
                } else if (strcmp(line, "close") == 0) {
                    for (size_t k = 0; k < nconns; k++) close(conns[k].fd);
                    printf("ok %zu\n", nconns);
                    fflush(stdout);
                    return 0;
                }
                fflush(stdout);
                size_t used = (size_t)(end - line) + 1;
                memmove(line, line + used, linelen - used);
                linelen -= used;
            }
        }
    }
}
