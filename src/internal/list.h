/* SPDX-License-Identifier: MIT */
/*
 * Intrusive doubly-linked lists with a NULL-terminated head pointer, so an
 * all-zero structure holds a valid empty list. O(1) push and remove.
 */
#ifndef GOC_INTERNAL_LIST_H
#define GOC_INTERNAL_LIST_H

#include <stddef.h>

struct goc__dlink {
    struct goc__dlink *next, *prev;
};

#define goc__container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

static inline void goc__dlist_push(struct goc__dlink **head,
                                   struct goc__dlink *n)
{
    n->prev = NULL;
    n->next = *head;
    if (*head)
        (*head)->prev = n;
    *head = n;
}

static inline void goc__dlist_remove(struct goc__dlink **head,
                                     struct goc__dlink *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        *head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    n->next = n->prev = NULL;
}

/* Remove and return the first element, or NULL. */
static inline struct goc__dlink *goc__dlist_pop(struct goc__dlink **head)
{
    struct goc__dlink *n = *head;
    if (n)
        goc__dlist_remove(head, n);
    return n;
}

/* A FIFO of links: push at the back, take from the front. */
struct goc__dqueue {
    struct goc__dlink *head, *tail;
};

static inline void goc__dqueue_push_back(struct goc__dqueue *q,
                                         struct goc__dlink *n)
{
    n->next = NULL;
    n->prev = q->tail;
    if (q->tail)
        q->tail->next = n;
    else
        q->head = n;
    q->tail = n;
}

static inline void goc__dqueue_push_front(struct goc__dqueue *q,
                                          struct goc__dlink *n)
{
    goc__dlist_push(&q->head, n);
    if (!q->tail)
        q->tail = n;
}

static inline void goc__dqueue_remove(struct goc__dqueue *q,
                                      struct goc__dlink *n)
{
    if (q->tail == n)
        q->tail = n->prev;
    goc__dlist_remove(&q->head, n);
}

/* Remove and return the first link, or NULL. */
static inline struct goc__dlink *goc__dqueue_pop(struct goc__dqueue *q)
{
    struct goc__dlink *n = q->head;
    if (n)
        goc__dqueue_remove(q, n);
    return n;
}

#endif /* GOC_INTERNAL_LIST_H */
