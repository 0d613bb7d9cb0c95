/*
 * bench/ecdsa-verify.c - what one ECDSA P-256 signature check (DNSSEC algorithm 13) costs
 * in the two libraries a DNSSEC validator on Debian uses: nettle/GMP (what Debian's
 * libunbound8, and so Bulwark, is built with) and OpenSSL (what the unbound daemon is
 * built with). Same key, same digest, same process, interleaved rounds; prints the median
 * of each and their ratio (issue 21: where Bulwark's CPU per validated answer goes).
 *
 *   cc -O2 -o /tmp/ecdsa-verify bench/ecdsa-verify.c -lhogweed -lnettle -lgmp -lcrypto
 *   taskset -c 0 /tmp/ecdsa-verify [ROUNDS [CHECKS]]     (5 rounds of 5,000 by default)
 */
#include <nettle/ecc-curve.h>
#include <nettle/ecdsa.h>
#include <nettle/knuth-lfib.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 5, n = argc > 2 ? atoi(argv[2]) : 5000;
	if (rounds < 1 || rounds > 99 || n < 1) {
		fprintf(stderr, "usage: ecdsa-verify [ROUNDS 1-99 [CHECKS]]\n");
		return 2;
	}
	uint8_t digest[32];
	for (int i = 0; i < 32; i++)
		digest[i] = (uint8_t)(i * 7 + 1);

	/* nettle: a key pair and a signature of the digest */
	struct knuth_lfib_ctx rnd;
	knuth_lfib_init(&rnd, 13);
	struct ecc_point pub;
	struct ecc_scalar key;
	struct dsa_signature sig;
	ecc_point_init(&pub, nettle_get_secp_256r1());
	ecc_scalar_init(&key, nettle_get_secp_256r1());
	dsa_signature_init(&sig);
	ecdsa_generate_keypair(&pub, &key, &rnd, (nettle_random_func *)knuth_lfib_random);
	ecdsa_sign(&key, &rnd, (nettle_random_func *)knuth_lfib_random, sizeof(digest), digest,
		   &sig);

	/* OpenSSL: the same for its own key (the cost does not depend on which key) */
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	EVP_PKEY_CTX *pc = pk ? EVP_PKEY_CTX_new(pk, NULL) : NULL;
	unsigned char der[80];
	size_t derlen = sizeof(der);
	if (!pc || EVP_PKEY_sign_init(pc) != 1 ||
	    EVP_PKEY_sign(pc, der, &derlen, digest, sizeof(digest)) != 1 ||
	    EVP_PKEY_verify_init(pc) != 1) {
		fprintf(stderr, "ecdsa-verify: OpenSSL could not make a P-256 signature\n");
		return 1;
	}

	double tn[99], to[99];
	int bad = 0;
	for (int r = 0; r < rounds; r++) {
		double t0 = now_us();
		for (int i = 0; i < n; i++)
			bad += ecdsa_verify(&pub, sizeof(digest), digest, &sig) != 1;
		double t1 = now_us();
		for (int i = 0; i < n; i++)
			bad += EVP_PKEY_verify(pc, der, derlen, digest, sizeof(digest)) != 1;
		double t2 = now_us();
		tn[r] = (t1 - t0) / n;
		to[r] = (t2 - t1) / n;
	}
	qsort(tn, (size_t)rounds, sizeof(double), cmp);
	qsort(to, (size_t)rounds, sizeof(double), cmp);
	double mn = tn[rounds / 2], mo = to[rounds / 2];
	printf("ecdsa-verify: P-256, %d rounds of %d checks, %d failed\n", rounds, n, bad);
	printf("ecdsa-verify: nettle %.1f us, openssl %.1f us per check (medians); nettle/openssl "
	       "%.2f\n",
	       mn, mo, mn / mo);
	EVP_PKEY_CTX_free(pc);
	EVP_PKEY_free(pk);
	ecc_point_clear(&pub);
	ecc_scalar_clear(&key);
	dsa_signature_clear(&sig);
	return bad ? 1 : 0;
}
