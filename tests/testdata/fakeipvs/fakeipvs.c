#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
/* IP_VS_BASE_CTL = 64+1024; the IPVS sockopts span base..base+15 */
#define IPVS_BASE (64 + 1024 + 64)
#define IPVS_IN(o) ((o) >= IPVS_BASE && (o) < IPVS_BASE + 16)
int getsockopt(int fd, int level, int opt, void *val, socklen_t *len) {
	static int (*real)(int, int, int, void *, socklen_t *);
	if (level == IPPROTO_IP && IPVS_IN(opt)) {
		if (val && len) memset(val, 0, *len);
		if (opt == IPVS_BASE + 1 && val && len && *len >= 8) { ((unsigned *)val)[0] = 0x010201; ((unsigned *)val)[1] = 4096; }
		return 0;
	}
	if (!real) real = dlsym(RTLD_NEXT, "getsockopt");
	return real(fd, level, opt, val, len);
}
int setsockopt(int fd, int level, int opt, const void *val, socklen_t len) {
	static int (*real)(int, int, int, const void *, socklen_t);
	if (level == IPPROTO_IP && IPVS_IN(opt)) return 0;
	if (!real) real = dlsym(RTLD_NEXT, "setsockopt");
	return real(fd, level, opt, val, len);
}
