/*
 * naive_relay: the floor reference of tests/bench.sh, the simplest user-space libpcap relay.
 *
 *   naive_relay UPSTREAM DOWNSTREAM...
 *
 * Every port is opened in immediate mode (a wake-up per frame), inbound only, with a kernel
 * filter for PTP (L2 EtherType 0x88F7, UDP ports 319/320) and no PTP logic at all: a frame read
 * on UPSTREAM is injected on every DOWNSTREAM port, a frame read on a DOWNSTREAM port is injected
 * on UPSTREAM, one pcap_inject per frame. One ppoll() loop over every port's selectable fd;
 * pcap_dispatch(-1) empties a readable port. "naive_relay: relaying" on stderr once every port is
 * open; TERM/INT stop it (exit 0) with the frame counts on stderr. Errors: stderr, exit 1.
 *
 * Build: cc -O2 -Wall -Wextra -Werror -o naive_relay naive_relay.c -lpcap
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PORTS 64
#define SNAPLEN 444
#define BUFFER_BYTES (4 << 20)
#define FILTER "ether proto 0x88f7 or (udp port 319 or udp port 320)"

struct port {
	const char *name;
	pcap_t *pcap;
};

static struct port ports[MAX_PORTS]; /* ports[0] is upstream */
static int nports;
static unsigned long long frames_in, frames_out, send_errors;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void die(const char *what, const char *name, const char *detail)
{
	fprintf(stderr, "naive_relay: %s %s: %s\n", what, name, detail);
	exit(1);
}

static void send_to(struct port *to, const struct pcap_pkthdr *h, const u_char *frame)
{
	if (pcap_inject(to->pcap, frame, h->caplen) == (int)h->caplen)
		frames_out++;
	else
		send_errors++;
}

/* pcap_dispatch callback; user is the index of the port the frame came in on */
static void relay(u_char *user, const struct pcap_pkthdr *h, const u_char *frame)
{
	int from = (int)(intptr_t)user, i;

	frames_in++;
	if (from == 0) {
		for (i = 1; i < nports; i++)
			send_to(&ports[i], h, frame);
	} else {
		send_to(&ports[0], h, frame);
	}
}

static void open_port(struct port *p)
{
	char err[PCAP_ERRBUF_SIZE];
	struct bpf_program prog;

	p->pcap = pcap_create(p->name, err);
	if (!p->pcap)
		die("pcap_create", p->name, err);
	if (pcap_set_immediate_mode(p->pcap, 1) || pcap_set_snaplen(p->pcap, SNAPLEN) ||
	    pcap_set_buffer_size(p->pcap, BUFFER_BYTES))
		die("configuring", p->name, pcap_geterr(p->pcap));
	if (pcap_activate(p->pcap) < 0) /* > 0 is a warning */
		die("pcap_activate", p->name, pcap_geterr(p->pcap));
	if (pcap_setdirection(p->pcap, PCAP_D_IN))
		die("pcap_setdirection", p->name, pcap_geterr(p->pcap));
	if (pcap_compile(p->pcap, &prog, FILTER, 1, PCAP_NETMASK_UNKNOWN) ||
	    pcap_setfilter(p->pcap, &prog))
		die("filter", p->name, pcap_geterr(p->pcap));
	pcap_freecode(&prog);
	if (pcap_setnonblock(p->pcap, 1, err))
		die("pcap_setnonblock", p->name, err);
}

int main(int argc, char **argv)
{
	struct pollfd fds[MAX_PORTS];
	struct sigaction sa;
	sigset_t block, during_poll;
	int i, n;

	if (argc < 3 || argc - 1 > MAX_PORTS) {
		fprintf(stderr, "usage: naive_relay UPSTREAM DOWNSTREAM... (at most %d ports)\n",
			MAX_PORTS);
		return 2;
	}
	/* TERM/INT are blocked except inside ppoll: no stop request is lost between checks */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	if (sigprocmask(SIG_BLOCK, &block, &during_poll) || sigaction(SIGTERM, &sa, NULL) ||
	    sigaction(SIGINT, &sa, NULL))
		die("signals", "", strerror(errno));
	sigdelset(&during_poll, SIGTERM);
	sigdelset(&during_poll, SIGINT);

	nports = argc - 1;
	for (i = 0; i < nports; i++) {
		ports[i].name = argv[i + 1];
		open_port(&ports[i]);
		fds[i].fd = pcap_get_selectable_fd(ports[i].pcap);
		fds[i].events = POLLIN;
		if (fds[i].fd < 0)
			die("pcap_get_selectable_fd", ports[i].name, "no selectable fd");
	}
	fprintf(stderr, "naive_relay: relaying, upstream %s, %d downstream ports\n", ports[0].name,
		nports - 1);

	while (!stop) {
		n = ppoll(fds, (nfds_t)nports, NULL, &during_poll);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("ppoll", "", strerror(errno));
		}
		for (i = 0; i < nports && n > 0; i++) {
			if (!fds[i].revents)
				continue;
			n--;
			if (fds[i].revents & (POLLERR | POLLHUP | POLLNVAL))
				die("poll", ports[i].name, "port failed (link gone?)");
			if (pcap_dispatch(ports[i].pcap, -1, relay, (u_char *)(intptr_t)i) < 0)
				die("pcap_dispatch", ports[i].name, pcap_geterr(ports[i].pcap));
		}
	}
	fprintf(stderr, "naive_relay: stopped: frames in %llu, out %llu, send errors %llu\n",
		frames_in, frames_out, send_errors);
	for (i = 0; i < nports; i++)
		pcap_close(ports[i].pcap);
	return 0;
}
