/*
 * html.h - printable, self-contained HTML reports from the results store.
 *
 * A page has its CSS inline, no scripts and no outside resources, so it can
 * be mailed, archived or printed as one file (@media print keeps tables and
 * charts whole across pages). Charts are gnuplot SVG (chart.h) embedded
 * inline. Everything read from the store is written through html_text(),
 * which escapes & < > " ' : a model string or console line can only ever
 * be text on the page.
 *
 * Functions returning int give 0 on success and -1 with ERR saying what
 * failed and where (file, statement). A chart gnuplot could not draw is not
 * a failure: the page says so in the chart's place, with the reason.
 */
#ifndef TRACKRIG_HTML_H
#define TRACKRIG_HTML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "store.h"

/* One run: station, rack, operator, seed, times; a table per slot and
 * scenario (outcome, marginal flag, device, message, reason codes with the
 * actions for ops and for the technician); measurements with units and
 * limits; events; and the charts that apply (records arriving per minute per
 * slot when the run has telemetry, supply current when it was measured). */
int report_html_run(store *db, int64_t run_id, const char *path, char *err, size_t errlen);

/* Trends over the last LAST_N_RUNS runs (all when <= 0): pass rate per
 * scenario per run (chart), pass rate per model (chart), and flaky checks: a
 * (device IMEI, scenario) on one firmware whose outcome went both pass and
 * fail in the window. */
int report_html_trends(store *db, const char *path, int last_n_runs, char *err, size_t errlen);

/* ---- building blocks, for the other HTML reports (accept, qualify) ---- */

/* S as HTML text or attribute value: & < > " ' escaped; control bytes other
 * than tab and newline dropped. NULL writes nothing. */
void html_text(FILE *f, const char *s);

/* <!DOCTYPE html> ... <body>, with the shared stylesheet; TITLE escaped. */
void html_page_begin(FILE *f, const char *title);
void html_page_end(FILE *f);

/* A <figure> with the chart SVG, or, when SVG is NULL, a note with WHY. */
void html_figure(FILE *f, const char *svg, const char *caption, const char *why);

/* CSS class for an outcome ("pass", "fail", ...): "o-pass" etc., "o-other"
 * for anything unknown. */
const char *html_outcome_class(const char *outcome);

/* The run page's buffer depth: bucket b (0..NB-1) ends (b+1)*BUCKET_MS after
 * the first record was made; a record made at MADE and received at GOT (ms
 * from that same start) was buffered at each bucket end in [MADE, GOT).
 * html_buffer_add marks one record in DIFF (NB+1 zeroed doubles), returning
 * whether it was buffered at any bucket end; html_buffer_sum then turns DIFF
 * into the depth per bucket. */
bool html_buffer_add(double *diff, size_t nb, int64_t bucket_ms, int64_t made, int64_t got);
void html_buffer_sum(double *diff, size_t nb);

#endif
