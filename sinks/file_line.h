/* The file sink's NDJSON line of a record, shared by every file sink the record goes to. */
#ifndef SLUICE_FILE_LINE_H
#define SLUICE_FILE_LINE_H

#include <stddef.h>

#include "sink.h"

/**
 * @brief The line of @p rec (one JSON object and a newline) into rec->prepared and
 * rec->prepared_len. The text is reference-counted: the line of the record just made is handed
 * again to the next file sink that asks for the same record, so N file sinks of a topic format
 * each record once. Loop thread only. -1 with the reason in @p err (the record is bad).
 */
int file_line_prepare(struct sink_record *rec, char *err, size_t errlen);

/** @brief Drop the reference rec->prepared holds (from file_line_prepare). */
void file_line_release(struct sink_record *rec);

/** @brief A file sink starts (1) or is destroyed (-1): the last one gone frees the kept line. */
void file_line_users(int delta);

#endif
