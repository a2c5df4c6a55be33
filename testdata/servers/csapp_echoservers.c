/*
 * A concurrent line echo server driven by I/O multiplexing: one thread,
 * select over a pool of connected descriptors, in the style of CS:APP's
 * echoservers.c (section 12.2), written anew for echoconform's tests.
 * check_clients reads a whole line with the blocking Rio_readlineb from a
 * descriptor select said was ready: a client that sends part of a line
 * holds every other client up (CS:APP's own text points this out).
 *
 * Usage: csapp_echoservers PORT
 */
#include <sys/select.h>
#include "csapp_rio.h"

typedef struct {
    int maxfd;
    fd_set read_set;
    fd_set ready_set;
    int nready;
    int maxi;
    int clientfd[FD_SETSIZE];
    rio_t clientrio[FD_SETSIZE];
} pool;

static void init_pool(int listenfd, pool *p) {
    p->maxi = -1;
    for (int i = 0; i < FD_SETSIZE; i++)
        p->clientfd[i] = -1;
    p->maxfd = listenfd;
    FD_ZERO(&p->read_set);
    FD_SET(listenfd, &p->read_set);
}

static void add_client(int connfd, pool *p) {
    int i;
    p->nready--;
    for (i = 0; i < FD_SETSIZE; i++) {
        if (p->clientfd[i] < 0) {
            p->clientfd[i] = connfd;
            rio_readinitb(&p->clientrio[i], connfd);
            FD_SET(connfd, &p->read_set);
            if (connfd > p->maxfd)
                p->maxfd = connfd;
            if (i > p->maxi)
                p->maxi = i;
            break;
        }
    }
    if (i == FD_SETSIZE) {
        fprintf(stderr, "add_client error: Too many clients\n");
        exit(0);
    }
}

static void check_clients(pool *p) {
    char buf[MAXLINE];
    for (int i = 0; i <= p->maxi && p->nready > 0; i++) {
        int connfd = p->clientfd[i];
        if (connfd > 0 && FD_ISSET(connfd, &p->ready_set)) {
            p->nready--;
            ssize_t n = Rio_readlineb(&p->clientrio[i], buf, MAXLINE);
            if (n != 0) {
                Rio_writen(connfd, buf, n);
            } else {
                Close(connfd);
                FD_CLR(connfd, &p->read_set);
                p->clientfd[i] = -1;
            }
        }
    }
}

int main(int argc, char **argv) {
    struct sockaddr_storage clientaddr;
    socklen_t clientlen;
    static pool pool;
    if (argc != 2) {
        fprintf(stderr, "usage: %s <port>\n", argv[0]);
        exit(0);
    }
    int listenfd = Open_listenfd(argv[1]);
    printf("listening on %s\n", argv[1]);
    fflush(stdout);
    init_pool(listenfd, &pool);
    for (;;) {
        pool.ready_set = pool.read_set;
        pool.nready = select(pool.maxfd + 1, &pool.ready_set, NULL, NULL, NULL);
        if (FD_ISSET(listenfd, &pool.ready_set)) {
            clientlen = sizeof(struct sockaddr_storage);
            int connfd = Accept(listenfd, (struct sockaddr *)&clientaddr, &clientlen);
            add_client(connfd, &pool);
        }
        check_clients(&pool);
    }
}
