/*
 * Intrusive circular doubly-linked lists (as in the Linux kernel and libuv's queue.h):
 * the node lives inside the element, so queuing never allocates. A list head is a node
 * that points to itself when empty.
 */
#ifndef FND_LIST_H
#define FND_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct list_node {
    struct list_node *next;
    struct list_node *prev;
};

static inline void list_init(struct list_node *head)
{
    head->next = head;
    head->prev = head;
}

static inline bool list_empty(const struct list_node *head)
{
    return head->next == head;
}

/* True for a node that is in no list (after list_init or list_remove). */
static inline bool list_unlinked(const struct list_node *node)
{
    return node->next == node;
}

static inline void list_insert_before(struct list_node *at, struct list_node *node)
{
    node->prev = at->prev;
    node->next = at;
    at->prev->next = node;
    at->prev = node;
}

static inline void list_push_back(struct list_node *head, struct list_node *node)
{
    list_insert_before(head, node);
}

static inline void list_push_front(struct list_node *head, struct list_node *node)
{
    list_insert_before(head->next, node);
}

static inline void list_remove(struct list_node *node)
{
    node->prev->next = node->next;
    node->next->prev = node->prev;
    list_init(node);
}

static inline struct list_node *list_first(const struct list_node *head)
{
    return list_empty(head) ? NULL : head->next;
}

/* Iterates safely against removal of the current node. */
#define list_for_each_safe(pos, tmp, head)                                                     \
    for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head);                           \
         (pos) = (tmp), (tmp) = (pos)->next)

#endif
