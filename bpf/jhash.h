/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* jhash.h: Bob Jenkins' lookup3 mixing for up to three 32-bit words, as
 * the kernel's jhash_3words. Deterministic across nodes. */
#ifndef XDPVIP_JHASH_H
#define XDPVIP_JHASH_H

#include <linux/types.h>

static __always_inline __u32 rol32(__u32 w, unsigned int s)
{
	return (w << s) | (w >> (32 - s));
}

#define JHASH_INITVAL 0xdeadbeef

static __always_inline __u32 jhash_3words(__u32 a, __u32 b, __u32 c, __u32 initval)
{
	a += JHASH_INITVAL + initval + (3 << 2);
	b += JHASH_INITVAL + initval + (3 << 2);
	c += JHASH_INITVAL + initval + (3 << 2);
	/* final mix */
	c ^= b; c -= rol32(b, 14);
	a ^= c; a -= rol32(c, 11);
	b ^= a; b -= rol32(a, 25);
	c ^= b; c -= rol32(b, 16);
	a ^= c; a -= rol32(c, 4);
	b ^= a; b -= rol32(a, 14);
	c ^= b; c -= rol32(b, 24);
	return c;
}

#endif
