/* SPDX-License-Identifier: MIT */
/* The dashboard's files, served from gateway.web_root. */
#ifndef JW_GATEWAY_STATIC_H
#define JW_GATEWAY_STATIC_H

#include "http.h"

/* Answers GET req with the file of web_root named by its path ("/" is
 * index.html); 404 for anything else: only plain names of the root, no
 * sub-directories, no dot files. */
void static_serve(const char *web_root, struct http_request *req);

#endif
