/* bench.h - the parts of `make bench`. */
#ifndef BENCH_H
#define BENCH_H

/* Kafka -> processors -> Kafka throughput and latency (bench_kafka.c); `file_rate` is
 * the file pipeline's events/s from the same run, for the ratio. 0 when all went well. */
int bench_kafka(const char *config, const char *events_path, double file_rate);

#endif
