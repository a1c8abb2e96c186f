/* source_kafka.h - BusinessEvents from Kafka topics (consumer group), at least once:
 * registered as rt_source_kind_kafka (source.h). */
#ifndef RT_SOURCE_KAFKA_H
#define RT_SOURCE_KAFKA_H

#include "source.h"

#endif
