/*
 * genomebus_bwa.c: `bwa mem` of bwa 0.7.17 plus one option, -J INT; every other bwa command is
 * Debian's own /usr/bin/bwa.
 *
 * Why it exists. genomebus aligns a sample's reads in chunks (whole bwa batches of -K bases)
 * and merges the results. bwa mem breaks ties between equally good hits with a hash of each
 * read's index in its run (mem_process_seqs() numbers a batch's reads from the n_processed it
 * is given, which bwa's front end starts at 0). A chunk aligned alone therefore numbers its
 * reads from 0 and places a few tied reads (and their mates) elsewhere than the whole sample
 * aligned in one run. -J INT starts that count at INT, the number of reads of the whole sample
 * before this input (paired: 2 x the pairs before it), so chunks aligned apart with their -J
 * and concatenated give exactly the records of one run. -J 0, the default, is bwa itself.
 *
 * Why a front end of our own rather than a patched bwa. genomebus gets software only as
 * packages, by name. Debian's libbwa-dev ships the whole of bwa's alignment code as
 * /usr/lib/libbwa.a (bwamem, bwamem_pair, bwa.o's bseq_read/bwa_idx_load/header helpers,
 * kthread's kt_pipeline, kseq) with its headers in /usr/include/bwa, built from the same source
 * package and flags as Debian's bwa binary; only the command-line front end (fastmap.c's
 * main_mem, main.c, kopen.c) is left out. This file re-implements that front end for the
 * subset genomebus runs, step for step as bwa 0.7.17's main_mem() and process() do it:
 *
 *   bwa mem [-t INT] [-K INT] [-R STR] [-J INT] <idxbase> <in1.fq[.gz]> [in2.fq[.gz]]
 *
 * Same as bwa 0.7.17: mem_opt_init() defaults; -t/-K/-R parsing; the read group through
 * bwa_set_rg() and bwa_insert_header(); bwa_fill_scmat(); bwa_idx_load(BWA_IDX_ALL); the
 * header through bwa_print_sam_hdr() with an @PG line of bwa's form naming this build; a batch
 * of -K bases if given, else chunk_size x threads; kt_pipeline() with two threads over bwa's
 * three steps (bseq_read, comments dropped; mem_process_seqs(..., n_processed, ...), then
 * n_processed += n; print each record, free); the usage and exit codes; main()'s closing
 * "[main] Version/CMD/Real time" lines on stderr.
 * Not reproduced: bwa mem's other options (refused with a message; Debian's /usr/bin/bwa mem
 * has them); an index loaded by `bwa shm` is not looked for (bwashm.o is not in libbwa.a);
 * inputs are paths or "-" opened with zlib, not kopen()'s URLs and "<" commands.
 * tests/devstack/test_bwa.py checks the records equal Debian's bwa's, and the chunked runs.
 *
 * bwa is GPLv3 (Heng Li and contributors); this front end follows its fastmap.c and main.c,
 * and the program built from it links libbwa.a, so it is GPLv3 too.
 *
 * Build: gcc -O2 -I/usr/include/bwa genomebus_bwa.c /usr/lib/libbwa.a -lz -lpthread -lm -lrt
 */

#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "bwa.h"
#include "bwamem.h"
#include "kseq.h"
#include "kstring.h"
#include "utils.h"
KSEQ_DECLARE(gzFile)

#ifndef GENOMEBUS_BWA_VERSION
#define GENOMEBUS_BWA_VERSION "0.7.17-r1188+genomebus.1"
#endif
#ifndef STOCK_BWA /* Debian's bwa: runs every command but mem */
#define STOCK_BWA "/usr/bin/bwa"
#endif

/* In libbwa.a (kthread.o) but in no header: fastmap.c declares it the same way. */
void kt_pipeline(int n_threads, void *(*func)(void *, int, void *), void *shared_data, int n_steps);
extern char *bwa_pg;

/* fastmap.c's ktp_aux_t / ktp_data_t */
typedef struct {
	kseq_t *ks, *ks2;
	mem_opt_t *opt;
	mem_pestat_t *pes0; /* -I (not offered): always 0, pairs' insert sizes are inferred */
	int64_t n_processed; /* reads before the current batch: -J, then += each batch */
	int copy_comment, actual_chunk_size; /* copy_comment: -C (not offered), always 0 */
	bwaidx_t *idx;
} ktp_aux_t;

typedef struct {
	ktp_aux_t *aux;
	int n_seqs;
	bseq1_t *seqs;
} ktp_data_t;

/* fastmap.c's process(): step 0 reads a batch, 1 aligns it, 2 prints and frees it. */
static void *process(void *shared, int step, void *_data)
{
	ktp_aux_t *aux = (ktp_aux_t *)shared;
	ktp_data_t *data = (ktp_data_t *)_data;
	int i;
	if (step == 0) {
		ktp_data_t *ret;
		int64_t size = 0;
		ret = calloc(1, sizeof(ktp_data_t));
		ret->seqs = bseq_read(aux->actual_chunk_size, &ret->n_seqs, aux->ks, aux->ks2);
		if (ret->seqs == 0) {
			free(ret);
			return 0;
		}
		if (!aux->copy_comment)
			for (i = 0; i < ret->n_seqs; ++i) {
				free(ret->seqs[i].comment);
				ret->seqs[i].comment = 0;
			}
		for (i = 0; i < ret->n_seqs; ++i) size += ret->seqs[i].l_seq;
		if (bwa_verbose >= 3)
			fprintf(stderr, "[M::%s] read %d sequences (%ld bp)...\n", __func__, ret->n_seqs, (long)size);
		return ret;
	} else if (step == 1) {
		/* bwa's smart-pairing branch (-p) is left out with the option */
		const bwaidx_t *idx = aux->idx;
		mem_process_seqs(aux->opt, idx->bwt, idx->bns, idx->pac, aux->n_processed, data->n_seqs, data->seqs, aux->pes0);
		aux->n_processed += data->n_seqs;
		return data;
	} else if (step == 2) {
		for (i = 0; i < data->n_seqs; ++i) {
			if (data->seqs[i].sam) err_fputs(data->seqs[i].sam, stdout);
			free(data->seqs[i].name); free(data->seqs[i].comment);
			free(data->seqs[i].seq); free(data->seqs[i].qual); free(data->seqs[i].sam);
		}
		free(data->seqs); free(data);
		return 0;
	}
	return 0;
}

static void mem_usage(const mem_opt_t *opt)
{
	fprintf(stderr, "\n");
	fprintf(stderr, "Usage: bwa mem [options] <idxbase> <in1.fq> [in2.fq]\n\n");
	fprintf(stderr, "genomebus's bwa mem (bwa %s, Debian's libbwa): only the options below;\n", GENOMEBUS_BWA_VERSION);
	fprintf(stderr, "Debian's %s mem has the others. Every other value is bwa's default.\n\n", STOCK_BWA);
	fprintf(stderr, "       -t INT        number of threads [%d]\n", opt->n_threads);
	fprintf(stderr, "       -K INT        process INT input bases in each batch regardless of nThreads (for reproducibility) []\n");
	fprintf(stderr, "       -J INT        reads of the whole sample before this input (its first read's index; paired: 2 x pairs),\n"
	                "                     so that ties break as when the whole sample is aligned in one run [0]\n");
	fprintf(stderr, "       -R STR        read group header line such as '@RG\\tID:foo\\tSM:bar' [null]\n");
	fprintf(stderr, "\n");
	fprintf(stderr, "Note: Please read the man page for detailed description of the command line and options.\n");
	fprintf(stderr, "\n");
}

/* A path as bwa's kopen() would open it, for the two cases genomebus has: a file, or "-". */
static gzFile open_reads(const char *fn)
{
	if (strcmp(fn, "-") == 0) return gzdopen(dup(fileno(stdin)), "r");
	return gzopen(fn, "r");
}

static int main_mem(int argc, char *argv[])
{
	mem_opt_t *opt;
	int c, fixed_chunk_size = -1;
	gzFile fp, fp2 = 0;
	char *p, *rg_line = 0, *hdr_line = 0;
	ktp_aux_t aux;

	memset(&aux, 0, sizeof(ktp_aux_t));
	aux.opt = opt = mem_opt_init();
	opterr = 0; /* our own message for bwa options this build does not take */
	while ((c = getopt(argc, argv, ":t:R:K:J:")) >= 0) {
		if (c == 't') opt->n_threads = atoi(optarg), opt->n_threads = opt->n_threads > 1? opt->n_threads : 1;
		else if (c == 'K') fixed_chunk_size = atoi(optarg);
		else if (c == 'R') {
			if ((rg_line = bwa_set_rg(optarg)) == 0) return 1;
		} else if (c == 'J') {
			errno = 0;
			aux.n_processed = strtoll(optarg, &p, 10);
			if (p == optarg || *p != 0 || errno != 0 || aux.n_processed < 0) {
				fprintf(stderr, "[E::%s] -J needs the number of reads before this input (an integer >= 0), not '%s'\n", __func__, optarg);
				return 1;
			}
		} else if (c == ':') {
			fprintf(stderr, "[E::%s] option -%c needs a value\n", __func__, optopt);
			return 1;
		} else {
			fprintf(stderr, "[E::%s] option -%c is not offered by genomebus's bwa mem (it takes -t -K -R -J); Debian's %s mem has it\n",
			        __func__, isprint(optopt)? optopt : '?', STOCK_BWA);
			return 1;
		}
	}

	if (rg_line) {
		hdr_line = bwa_insert_header(rg_line, hdr_line);
		free(rg_line);
	}

	if (opt->n_threads < 1) opt->n_threads = 1;
	if (optind + 1 >= argc || optind + 3 < argc) {
		mem_usage(opt);
		free(opt);
		return 1;
	}

	/* bwa: update_a() (a no-op without -A), then the scoring matrix */
	bwa_fill_scmat(opt->a, opt->b, opt->mat);

	if ((aux.idx = bwa_idx_load(argv[optind], BWA_IDX_ALL)) == 0) return 1;

	if ((fp = open_reads(argv[optind + 1])) == 0) {
		if (bwa_verbose >= 1) fprintf(stderr, "[E::%s] fail to open file `%s'.\n", __func__, argv[optind + 1]);
		return 1;
	}
	aux.ks = kseq_init(fp);
	if (optind + 2 < argc) {
		if ((fp2 = open_reads(argv[optind + 2])) == 0) {
			if (bwa_verbose >= 1) fprintf(stderr, "[E::%s] fail to open file `%s'.\n", __func__, argv[optind + 2]);
			return 1;
		}
		aux.ks2 = kseq_init(fp2);
		opt->flag |= MEM_F_PE;
	}
	bwa_print_sam_hdr(aux.idx->bns, hdr_line);
	aux.actual_chunk_size = fixed_chunk_size > 0? fixed_chunk_size : opt->chunk_size * opt->n_threads;
	kt_pipeline(2, process, &aux, 3);
	free(hdr_line);
	free(opt);
	bwa_idx_destroy(aux.idx);
	kseq_destroy(aux.ks);
	err_gzclose(fp);
	if (aux.ks2) {
		kseq_destroy(aux.ks2);
		err_gzclose(fp2);
	}
	return 0;
}

/* main.c's usage(), this build's version, and where the other commands go. */
static int usage(void)
{
	fprintf(stderr, "\n");
	fprintf(stderr, "Program: bwa (alignment via Burrows-Wheeler transformation)\n");
	fprintf(stderr, "Version: %s\n", GENOMEBUS_BWA_VERSION);
	fprintf(stderr, "Contact: Heng Li <lh3@sanger.ac.uk>\n\n");
	fprintf(stderr, "Usage:   bwa <command> [options]\n\n");
	fprintf(stderr, "Command: index         index sequences in the FASTA format\n");
	fprintf(stderr, "         mem           BWA-MEM algorithm (genomebus: adds -J)\n");
	fprintf(stderr, "         fastmap       identify super-maximal exact matches\n");
	fprintf(stderr, "         pemerge       merge overlapping paired ends (EXPERIMENTAL)\n");
	fprintf(stderr, "         aln           gapped/ungapped alignment\n");
	fprintf(stderr, "         samse         generate alignment (single ended)\n");
	fprintf(stderr, "         sampe         generate alignment (paired ended)\n");
	fprintf(stderr, "         bwasw         BWA-SW for long queries\n");
	fprintf(stderr, "\n");
	fprintf(stderr, "         shm           manage indices in shared memory\n");
	fprintf(stderr, "         fa2pac        convert FASTA to PAC format\n");
	fprintf(stderr, "         pac2bwt       generate BWT from PAC\n");
	fprintf(stderr, "         pac2bwtgen    alternative algorithm for generating BWT\n");
	fprintf(stderr, "         bwtupdate     update .bwt to the new format\n");
	fprintf(stderr, "         bwt2sa        generate SA from BWT and Occ\n");
	fprintf(stderr, "\n");
	fprintf(stderr,
"Note: `mem' is genomebus's build on Debian's libbwa (see `bwa mem'); every\n"
"      other command runs Debian's %s. To use BWA, you need to first\n"
"      index the genome with `bwa index'.\n\n", STOCK_BWA);
	return 1;
}

int main(int argc, char *argv[])
{
	int i, ret;
	double t_real;
	kstring_t pg = {0, 0, 0};

	if (argc >= 2 && strcmp(argv[1], "mem") != 0) { /* not ours: Debian's bwa, same argv */
		char self[PATH_MAX], stock[PATH_MAX];
		if (realpath("/proc/self/exe", self) && realpath(STOCK_BWA, stock) && strcmp(self, stock) == 0) {
			fprintf(stderr, "[E::%s] %s is this program, not Debian's bwa\n", __func__, STOCK_BWA);
			return 1;
		}
		execv(STOCK_BWA, argv);
		fprintf(stderr, "[E::%s] cannot run %s for `bwa %s': %s (Debian package bwa)\n", __func__, STOCK_BWA, argv[1], strerror(errno));
		return 127;
	}
	t_real = realtime();
	ksprintf(&pg, "@PG\tID:bwa\tPN:bwa\tVN:%s\tCL:%s", GENOMEBUS_BWA_VERSION, argv[0]);
	for (i = 1; i < argc; ++i) ksprintf(&pg, " %s", argv[i]);
	bwa_pg = pg.s;
	if (argc < 2) return usage();
	ret = main_mem(argc - 1, argv + 1);
	err_fflush(stdout);
	err_fclose(stdout);
	if (ret == 0) {
		fprintf(stderr, "[%s] Version: %s\n", __func__, GENOMEBUS_BWA_VERSION);
		fprintf(stderr, "[%s] CMD:", __func__);
		for (i = 0; i < argc; ++i)
			fprintf(stderr, " %s", argv[i]);
		fprintf(stderr, "\n[%s] Real time: %.3f sec; CPU: %.3f sec\n", __func__, realtime() - t_real, cputime());
	}
	free(bwa_pg);
	return ret;
}
