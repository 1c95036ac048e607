/* base/list.h - the intrusive doubly linked list: the one push and unlink every owner uses. */
#ifndef INGESTD_BASE_LIST_H
#define INGESTD_BASE_LIST_H

#include <stddef.h>

/* Embed a base_link_t in the element; a list is a base_list_t. O(1) everything; no allocation.
 * Not thread-safe: one owner thread. */
typedef struct base_link {
    struct base_link *prev;
    struct base_link *next;
} base_link_t;

typedef struct {
    base_link_t *head;
    base_link_t *tail;
} base_list_t;

/* The element that embeds link l as its member m. */
#define BASE_CONTAINER(l, type, m) ((type *)(void *)((char *)(l)-offsetof(type, m)))

static inline void base_list_push_front(base_list_t *list, base_link_t *l)
{
    l->prev = NULL;
    l->next = list->head;
    if (list->head != NULL) {
        list->head->prev = l;
    } else {
        list->tail = l;
    }
    list->head = l;
}

static inline void base_list_push_back(base_list_t *list, base_link_t *l)
{
    l->next = NULL;
    l->prev = list->tail;
    if (list->tail != NULL) {
        list->tail->next = l;
    } else {
        list->head = l;
    }
    list->tail = l;
}

/* Takes l out of list (l must be in it); l's own links are left as they were, so a walk that
 * saved l->next before the call goes on correctly. */
static inline void base_list_unlink(base_list_t *list, base_link_t *l)
{
    if (l->prev != NULL) {
        l->prev->next = l->next;
    } else {
        list->head = l->next;
    }
    if (l->next != NULL) {
        l->next->prev = l->prev;
    } else {
        list->tail = l->prev;
    }
}

#endif
