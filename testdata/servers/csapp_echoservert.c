/*
 * A concurrent line echo server with a thread per connection, in the
 * style of CS:APP's echoservert.c (section 12.3.8) and its echo() (11.4.9),
 * written anew for echoconform's tests.
 *
 * Usage: csapp_echoservert PORT
 */
#include <pthread.h>
#include "csapp_rio.h"

static void echo(int connfd) {
    char buf[MAXLINE];
    rio_t rio;
    ssize_t n;
    rio_readinitb(&rio, connfd);
    while ((n = Rio_readlineb(&rio, buf, MAXLINE)) != 0)
        Rio_writen(connfd, buf, n);
}

static void *thread(void *vargp) {
    int connfd = *((int *)vargp);
    pthread_detach(pthread_self());
    free(vargp);
    echo(connfd);
    Close(connfd);
    return NULL;
}

int main(int argc, char **argv) {
    struct sockaddr_storage clientaddr;
    socklen_t clientlen;
    pthread_t tid;
    if (argc != 2) {
        fprintf(stderr, "usage: %s <port>\n", argv[0]);
        exit(0);
    }
    int listenfd = Open_listenfd(argv[1]);
    printf("listening on %s\n", argv[1]);
    fflush(stdout);
    for (;;) {
        clientlen = sizeof(struct sockaddr_storage);
        int *connfdp = malloc(sizeof(int));
        *connfdp = Accept(listenfd, (struct sockaddr *)&clientaddr, &clientlen);
        pthread_create(&tid, NULL, thread, connfdp);
    }
}
