/* report_sample.c - writes the compare report of a synthetic result (no server): the browser
 * test renders it, and it shows a layout change without a benchmark run.
 *
 *     report_sample MODES REPEAT OUT.html OUT.json */
#include <stdio.h>
#include <stdlib.h>

#include "report_fixture.h"

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: report_sample MODES REPEAT OUT.html OUT.json\n");
        return 2;
    }
    lg_compare_result_t r;
    int err = lgt_synthetic(&r, (unsigned)atoi(argv[1]), (unsigned)atoi(argv[2]));
    /* An argv that must come out escaped, never as markup. */
    char *shown[] = {"loadgen", "compare", "--server-arg", "--note=<script>alert(1)</script>&",
                     NULL};
    if (err == 0) {
        err = lg_result_set_argv(&r, 4, shown);
    }
    FILE *f = err == 0 ? fopen(argv[3], "w") : NULL;
    if (!f || lg_report_write_html(f, &r) != 0 || fclose(f) != 0) {
        fprintf(stderr, "report_sample: cannot write %s\n", argv[3]);
        lg_result_free(&r);
        return 1;
    }
    json_t *j = lg_report_json(&r);
    int rc = j && json_dump_file(j, argv[4], JSON_INDENT(2)) == 0 ? 0 : 1;
    json_decref(j);
    lg_result_free(&r);
    return rc;
}
