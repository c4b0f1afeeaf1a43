/* The send side of a relay, alone: CPU time per frame of sending PTP-sized frames on an AF_PACKET
 * socket in batches of 64, with sendmmsg(2) (what ptpproxy does) or through a PACKET_TX_RING
 * (TPACKET_V2, one send(2) per batch), each with and without PACKET_QDISC_BYPASS.
 * tests/bench.sh --tx-path runs it on a veth whose peer is in another namespace, so the peer's
 * receive path (run in the sender's context, as for every veth send) is part of every figure.
 *
 *   txpath IFNAME FRAMES MODE       MODE: sendmmsg | sendmmsg-bypass | txring | txring-bypass
 *
 * Prints one line: "MODE frames N user_ns_per_frame U sys_ns_per_frame S wall_ns_per_frame W".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define FRAME_LEN 68 /* an L2 Delay_Resp: 14 + 54 */
#define RING_FRAME 2048
#define RING_FRAMES 256

static double ns(struct timeval t) { return t.tv_sec * 1e9 + t.tv_usec * 1e3; }

static void die(const char *what) {
	perror(what);
	exit(1);
}

int main(int argc, char **argv) {
	if (argc != 4) {
		fprintf(stderr, "usage: txpath IFNAME FRAMES sendmmsg|sendmmsg-bypass|txring|txring-bypass\n");
		return 2;
	}
	const char *mode = argv[3];
	long frames = atol(argv[2]);
	int ring = strncmp(mode, "txring", 6) == 0;
	int bypass = strstr(mode, "bypass") != NULL;
	int fd = socket(AF_PACKET, SOCK_RAW, 0);
	if (fd < 0) die("socket");
	struct sockaddr_ll addr = {.sll_family = AF_PACKET, .sll_ifindex = (int)if_nametoindex(argv[1])};
	if (!addr.sll_ifindex) die("if_nametoindex");
	if (bind(fd, (struct sockaddr *)&addr, sizeof addr)) die("bind");
	int one = 1;
	if (bypass && setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one)) die("PACKET_QDISC_BYPASS");

	unsigned char frame[FRAME_LEN] = {0x01, 0x1b, 0x19, 0, 0, 0, 0x02, 0, 0, 0, 0, 1, 0x88, 0xf7, 0x09, 0x02};
	frame[16] = 0;
	frame[17] = 54;

	unsigned char *map = NULL;
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	static unsigned char staged[BATCH][FRAME_LEN];
	if (ring) {
		int v = TPACKET_V2;
		if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v, sizeof v)) die("PACKET_VERSION");
		struct tpacket_req req = {.tp_block_size = RING_FRAME * 16, .tp_block_nr = RING_FRAMES / 16,
					  .tp_frame_size = RING_FRAME, .tp_frame_nr = RING_FRAMES};
		if (setsockopt(fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof req)) die("PACKET_TX_RING");
		map = mmap(NULL, (size_t)RING_FRAME * RING_FRAMES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (map == MAP_FAILED) die("mmap");
	} else {
		memset(msgs, 0, sizeof msgs);
		for (int k = 0; k < BATCH; k++) {
			iov[k].iov_base = staged[k];
			iov[k].iov_len = FRAME_LEN;
			msgs[k].msg_hdr.msg_iov = &iov[k];
			msgs[k].msg_hdr.msg_iovlen = 1;
		}
	}

	struct rusage r0, r1;
	struct timespec w0, w1;
	getrusage(RUSAGE_SELF, &r0);
	clock_gettime(CLOCK_MONOTONIC, &w0);
	long sent = 0, errors = 0;
	unsigned slot = 0;
	while (sent + errors < frames) {
		int n = frames - sent - errors < BATCH ? (int)(frames - sent - errors) : BATCH;
		if (ring) {
			for (int k = 0; k < n; k++) {
				struct tpacket2_hdr *h = (struct tpacket2_hdr *)(map + (size_t)slot * RING_FRAME);
				while (h->tp_status != TP_STATUS_AVAILABLE) {
					if (h->tp_status == TP_STATUS_WRONG_FORMAT) die("TP_STATUS_WRONG_FORMAT");
					if (send(fd, NULL, 0, 0) < 0) die("send (ring)");
				}
				/* the frame is a copy, as a relay copies each captured frame */
				memcpy((unsigned char *)h + TPACKET2_HDRLEN - sizeof(struct sockaddr_ll), frame, FRAME_LEN);
				h->tp_len = FRAME_LEN;
				__atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
				slot = (slot + 1) % RING_FRAMES;
			}
			if (send(fd, NULL, 0, 0) < 0) die("send (ring)");
			sent += n;
		} else {
			/* the frames are copies, as a relay queues a copy of each captured frame */
			for (int k = 0; k < n; k++) memcpy(staged[k], frame, FRAME_LEN);
			int rc = sendmmsg(fd, msgs, (unsigned)n, 0);
			if (rc > 0)
				sent += rc;
			else
				errors++;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &w1);
	getrusage(RUSAGE_SELF, &r1);
	double f = (double)(sent > 0 ? sent : 1);
	printf("%s frames %ld errors %ld user_ns_per_frame %.0f sys_ns_per_frame %.0f wall_ns_per_frame %.0f\n", mode,
	       sent, errors, (ns(r1.ru_utime) - ns(r0.ru_utime)) / f, (ns(r1.ru_stime) - ns(r0.ru_stime)) / f,
	       ((w1.tv_sec - w0.tv_sec) * 1e9 + (w1.tv_nsec - w0.tv_nsec)) / f);
	return 0;
}
