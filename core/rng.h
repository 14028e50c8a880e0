/*
 * rng.h - the machine's pseudo-random number generator.
 *
 * Every random choice a simulated machine makes (boot churn, KASLR bases)
 * comes from one generator per machine: xoshiro256** (Blackman and Vigna,
 * 2018), seeded through splitmix64 from the machine's 64-bit `seed`, as the
 * reference implementations at prng.di.unimi.it do. Nothing else in core/
 * is random, so a machine is a function of its seed and its operations.
 *
 * The state is four 64-bit words and is part of the machine's canonical
 * state (it decides future results).
 */
#ifndef VM_RNG_H
#define VM_RNG_H

#include <stdint.h>

struct vm_rng {
	uint64_t s[4];
};

/* Seeds the generator: s[i] = successive outputs of splitmix64(seed). */
void vm_rng_init(struct vm_rng *rng, uint64_t seed);

/* The next 64-bit output of xoshiro256**. */
uint64_t vm_rng_next(struct vm_rng *rng);

/*
 * A value in [0, n) for n > 0: next() % n. The modulo bias (below 2^-40 for
 * any n the model uses) is accepted to keep the rule simple to state and
 * to reproduce by hand.
 */
uint64_t vm_rng_below(struct vm_rng *rng, uint64_t n);

#endif
