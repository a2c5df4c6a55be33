/*
 * The robust I/O package and error-handling wrappers in the style of
 * Bryant & O'Hallaron, "Computer Systems: A Programmer's Perspective"
 * (CS:APP, 3rd ed., sections 10.5 and 11.4, csapp.c), written anew for
 * echoconform's tests: what the textbook servers are built on, with the
 * textbook's behaviour (a buffered readline that returns a last line
 * without a newline at EOF; wrappers that end the process on any error).
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#define MAXLINE 8192
#define LISTENQ 1024
#define RIO_BUFSIZE 8192

typedef struct {
    int fd;
    int cnt;          /* unread bytes in buf */
    char *bufptr;     /* next unread byte */
    char buf[RIO_BUFSIZE];
} rio_t;

static void unix_error(const char *msg) {
    fprintf(stderr, "%s: %s\n", msg, strerror(errno));
    exit(0);
}

static void rio_readinitb(rio_t *rp, int fd) {
    rp->fd = fd;
    rp->cnt = 0;
    rp->bufptr = rp->buf;
}

/* rio_read refills the buffer with one read when it is empty. */
static ssize_t rio_read(rio_t *rp, char *usrbuf, size_t n) {
    while (rp->cnt <= 0) {
        rp->cnt = read(rp->fd, rp->buf, sizeof(rp->buf));
        if (rp->cnt < 0) {
            if (errno != EINTR)
                return -1;
        } else if (rp->cnt == 0) {
            return 0;
        } else {
            rp->bufptr = rp->buf;
        }
    }
    size_t cnt = n < (size_t)rp->cnt ? n : (size_t)rp->cnt;
    memcpy(usrbuf, rp->bufptr, cnt);
    rp->bufptr += cnt;
    rp->cnt -= cnt;
    return cnt;
}

/* rio_readlineb reads a line of at most maxlen-1 bytes, newline included. */
static ssize_t rio_readlineb(rio_t *rp, void *usrbuf, size_t maxlen) {
    size_t n;
    char c, *bufp = usrbuf;
    for (n = 1; n < maxlen; n++) {
        ssize_t rc = rio_read(rp, &c, 1);
        if (rc == 1) {
            *bufp++ = c;
            if (c == '\n') {
                n++;
                break;
            }
        } else if (rc == 0) {
            if (n == 1)
                return 0; /* EOF, nothing read */
            break;        /* EOF, some bytes read */
        } else {
            return -1;
        }
    }
    *bufp = 0;
    return n - 1;
}

static ssize_t rio_writen(int fd, const void *usrbuf, size_t n) {
    size_t left = n;
    const char *p = usrbuf;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w <= 0) {
            if (errno == EINTR)
                w = 0;
            else
                return -1;
        }
        left -= w;
        p += w;
    }
    return n;
}

static ssize_t Rio_readlineb(rio_t *rp, void *usrbuf, size_t maxlen) {
    ssize_t rc = rio_readlineb(rp, usrbuf, maxlen);
    if (rc < 0)
        unix_error("Rio_readlineb error");
    return rc;
}

static void Rio_writen(int fd, void *usrbuf, size_t n) {
    if (rio_writen(fd, usrbuf, n) != (ssize_t)n)
        unix_error("Rio_writen error");
}

/* open_listenfd listens on port, on loopback only (the tests' rule). */
static int Open_listenfd(const char *port) {
    struct addrinfo hints, *list, *p;
    int fd = -1, one = 1;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
    if (getaddrinfo("127.0.0.1", port, &hints, &list) != 0)
        unix_error("getaddrinfo");
    for (p = list; p; p = p->ai_next) {
        if ((fd = socket(p->ai_family, p->ai_socktype, p->ai_protocol)) < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, p->ai_addr, p->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(list);
    if (fd < 0 || listen(fd, LISTENQ) < 0)
        unix_error("Open_listenfd error");
    return fd;
}

static int Accept(int s, struct sockaddr *addr, socklen_t *addrlen) {
    int rc = accept(s, addr, addrlen);
    if (rc < 0)
        unix_error("Accept error");
    return rc;
}

static void Close(int fd) {
    if (close(fd) < 0)
        unix_error("Close error");
}
