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

#endif /* GOC_INTERNAL_LIST_H */
