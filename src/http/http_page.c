/* http_page: the status page (/), for a phone on the site's Wi-Fi: one HTML document with its
 * style inline and its charts as inline SVG, nothing fetched from anywhere (it works with no
 * internet and a Content-Security-Policy that forbids everything else), no script; it reloads
 * itself every REFRESH_S. Per bank: state of charge, power, current, packs online, lowest and
 * highest cell and where, hottest sensor, and a 24 h chart of state of charge and power from
 * the history; the daemon's writing and the broker's state; one row per pack with its health
 * and the age of its data, its alarms and protections in words; a bar chart of each pack's
 * cells. Old data says so: its age, and the row marked stale or offline.
 *
 * Every number shown inside a data-field="…" element is the view's value that /api/latest
 * gives under the same name (tests/test_http.c compares them in a real browser). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http_internal.h"
#include "log.h"

#define REFRESH_S 10
#define CHART_S 86400
#define CHART_STEP_S 300
#define CHART_N (CHART_S / CHART_STEP_S + 1)

void http_html(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* A number with dec decimals, "–" when absent; never "-0.0". */
static void num(FILE *f, double v, int dec)
{
    if (isnan(v)) {
        fputs("&ndash;", f);
        return;
    }
    char b[64];
    snprintf(b, sizeof b, "%.*f", dec, v);
    fputs(b[0] == '-' && strspn(b + 1, "0.") == strlen(b + 1) ? b + 1 : b, f);
}

/* A number the browser test reads: <span data-field="kind.id.key">value</span> */
static void field(FILE *f, const char *kind, const char *id, const char *key, double v, int dec)
{
    fprintf(f, "<span data-field=\"%s.", kind);
    http_html(f, id);
    fprintf(f, ".%s\">", key);
    num(f, v, dec);
    fputs("</span>", f);
}

/* An age: seconds up to 2 minutes, then minutes, hours, days. */
static void age(FILE *f, double s)
{
    if (isnan(s)) {
        fputs("never", f);
        return;
    }
    if (s < 0)
        s = 0;
    if (s < 120)
        fprintf(f, "%.0f s", s);
    else if (s < 7200)
        fprintf(f, "%.0f min", s / 60);
    else if (s < 172800)
        fprintf(f, "%.0f h", s / 3600);
    else
        fprintf(f, "%.0f days", s / 86400);
}

static const char style[] =
    "body{font:15px/1.4 system-ui,sans-serif;margin:0;padding:.6em;background:#f4f5f7;"
    "color:#1c1e21}h1{font-size:1.3em;margin:.2em 0}h2{font-size:1.15em;margin:.2em 0 .4em}"
    "h3{font-size:1em;margin:.3em 0}.meta{color:#555;margin:.2em 0 .6em}"
    "section{background:#fff;border-radius:8px;padding:.6em .8em;margin:0 0 .8em;"
    "box-shadow:0 1px 2px rgba(0,0,0,.08)}.tiles{display:flex;flex-wrap:wrap;gap:.4em}"
    ".tile{flex:1 1 9em;background:#f4f5f7;border-radius:6px;padding:.3em .5em}"
    ".tile .l{display:block;font-size:.8em;color:#555}.tile .v{font-size:1.35em;"
    "font-weight:600}.tile .w{display:block;font-size:.8em;color:#555}"
    ".badge{font-size:.8em;padding:.1em .5em;border-radius:1em;background:#d8f0dc;"
    "color:#14532d;font-weight:600}.badge.warn{background:#fdf0c8;color:#713f12}"
    ".badge.bad{background:#fbd5d5;color:#7f1d1d}.scroll{overflow-x:auto}"
    "table{border-collapse:collapse;width:100%;font-size:.85em}th,td{padding:.25em .22em;"
    "text-align:right;white-space:nowrap}td.sub{border-bottom:1px solid #e4e6eb;font-size:.85em;"
    "color:#555;padding-top:0}"
    "th:first-child,td:first-child,td.t,th.t{text-align:left}td.t{white-space:normal}"
    "tr.stale td{color:#8a6d00}tr.offline td{color:#999}tr.offline td.h,tr.stale td.h"
    "{font-weight:700}tr.offline td.h{color:#b91c1c}.alarm{color:#b91c1c;font-weight:600}"
    ".cells{display:grid;grid-template-columns:repeat(auto-fill,minmax(17em,1fr));gap:.6em}"
    "svg{width:100%;height:auto;display:block}svg text{font:11px system-ui,sans-serif;"
    "fill:#555}.stalenote{color:#b45309;font-weight:600}footer{color:#777;font-size:.8em}";

static const char *health_word(const char *h)
{
    if (strcmp(h, "offline") == 0)
        return "OFFLINE";
    return h[0] ? h : "unknown";
}

/* ---------------------------------------------------------------- the 24 h chart */

struct chart {
    double soc_w[CHART_N], w[CHART_N], power[CHART_N];
    unsigned char has_soc[CHART_N], has_power[CHART_N];
};

/* Per pack and 5-minute bucket of the last 24 h: its mean state of charge, capacity and power,
 * from the raw samples (retention keeps them at least a day), through the (ts, pack) index. */
static const char chart_sql[] =
    "SELECT p.bank, s.ts / 1000 / ?2 AS b, avg(s.soc_cpct) / 100.0, avg(s.full_mah),"
    " avg(s.voltage_mv * s.current_ma) / 1e6"
    " FROM samples s JOIN packs p ON p.id = s.pack"
    " WHERE s.pack IN (SELECT id FROM packs) AND s.ts >= ?1 GROUP BY s.pack, b";

/* The charts of every bank of h->state (NULL when they cannot be read: the page goes on). */
static struct chart *read_charts(struct http *h, int64_t *first_bucket)
{
    size_t nb = h->state.nbanks;
    struct chart *c = nb ? calloc(nb, sizeof *c) : NULL;
    if (c == NULL)
        return NULL;
    int64_t from_s = h->state.now_ms / 1000 - CHART_S;
    *first_bucket = from_s / CHART_STEP_S;
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(h->db, chart_sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)*first_bucket * CHART_STEP_S * 1000);
        sqlite3_bind_int(st, 2, CHART_STEP_S);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            const unsigned char *bank = sqlite3_column_text(st, 0);
            int64_t k = sqlite3_column_int64(st, 1) - *first_bucket;
            size_t b = 0;
            while (bank && b < nb && strcmp(h->state.banks[b].id, (const char *)bank) != 0)
                b++;
            if (bank == NULL || b == nb || k < 0 || k >= CHART_N)
                continue;
            struct chart *ch = &c[b];
            if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
                double w = sqlite3_column_type(st, 3) == SQLITE_NULL ? 1
                                                                     : sqlite3_column_double(st, 3);
                ch->soc_w[k] += sqlite3_column_double(st, 2) * w;
                ch->w[k] += w;
                ch->has_soc[k] = 1;
            }
            if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
                ch->power[k] += sqlite3_column_double(st, 4);
                ch->has_power[k] = 1;
            }
        }
        sqlite3_finalize(st);
    }
    if (rc != SQLITE_DONE) {
        http_warn(h, "the page's chart cannot be read: %s", sqlite3_errmsg(h->db));
        free(c);
        return NULL;
    }
    return c;
}

#define CW 330 /* the chart's drawing area, in SVG units (about a phone's width) */
#define CH 130
#define CX 36
#define CY 10

/* One polyline with gaps: M at the first point after a gap, L after. */
static void series(FILE *f, const unsigned char *has, const double *y, const char *colour)
{
    /* round caps: a lone point (a gap on each side) shows as a dot */
    fprintf(f, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"2\" stroke-linecap=\"round\""
               " stroke-linejoin=\"round\" d=\"", colour);
    int pen = 0;
    for (int k = 0; k < CHART_N; k++) {
        if (!has[k]) {
            pen = 0;
            continue;
        }
        fprintf(f, "%c%.1f %.1f%s", pen ? 'L' : 'M', CX + (double)k * CW / (CHART_N - 1), y[k],
                pen ? "" : "h0");
        pen = 1;
    }
    fputs("\"/>", f);
}

static void chart_svg(FILE *f, const struct chart *c)
{
    double soc_y[CHART_N], p_y[CHART_N], pmax = 0;
    unsigned char any = 0;
    for (int k = 0; k < CHART_N; k++) {
        if (c->has_power[k] && fabs(c->power[k]) > pmax)
            pmax = fabs(c->power[k]);
        any |= (unsigned char)(c->has_soc[k] | c->has_power[k]);
    }
    if (!any) {
        fputs("<p class=\"meta\">No sample in the last 24 h.</p>", f);
        return;
    }
    /* the power axis: symmetric about 0, rounded up to 1, 2 or 5 times a power of ten */
    double step = pow(10, floor(log10(pmax > 1 ? pmax : 1)));
    double top = step;
    while (top < pmax)
        top += step;
    for (int k = 0; k < CHART_N; k++) {
        double soc = c->has_soc[k] && c->w[k] > 0 ? c->soc_w[k] / c->w[k] : 0;
        soc_y[k] = CY + CH * (1 - soc / 100);
        p_y[k] = CY + CH / 2.0 * (1 - (c->has_power[k] ? c->power[k] : 0) / top);
    }
    fprintf(f, "<svg viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"state of charge and power, "
               "last 24 hours\">", CX + CW + 48, CY + CH + 22);
    for (int i = 0; i <= 4; i++) { /* grid, the axes' labels */
        double y = CY + CH * i / 4.0;
        fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>", CX, CX + CW,
                y, y, i == 2 ? "#bbb" : "#e4e6eb");
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%d %%</text>", CX - 4, y + 4,
                100 - 25 * i);
        fprintf(f, "<text x=\"%d\" y=\"%.1f\">%.0f W</text>", CX + CW + 4, y + 4,
                top * (1 - i / 2.0));
    }
    for (int hago = 24; hago >= 0; hago -= 6)
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s%d h</text>",
                CX + CW * (1 - hago / 24.0), CY + CH + 18, hago ? "-" : "", hago);
    series(f, c->has_soc, soc_y, "#15803d");
    series(f, c->has_power, p_y, "#d97706");
    fputs("</svg><p class=\"meta\"><span style=\"color:#15803d\">&#9632;</span> state of charge "
          "(left) &nbsp;<span style=\"color:#d97706\">&#9632;</span> power, positive while "
          "charging (right); 5-minute means</p>",
          f);
}

/* ---------------------------------------------------------------- the cells of a pack */

static void cells_svg(FILE *f, const struct http_pack *p)
{
    size_t n = p->ncells;
    double lo = INFINITY, hi = -INFINITY;
    size_t imin = 0, imax = 0;
    for (size_t i = 0; i < n; i++) {
        if (p->cell_v[i] < lo)
            lo = p->cell_v[i], imin = i;
        if (p->cell_v[i] > hi)
            hi = p->cell_v[i], imax = i;
    }
    /* the bars start below the lowest cell, so that millivolts of difference show */
    double spread = hi - lo, pad = spread > 0.01 ? spread : 0.01;
    double base = lo - pad, roof = hi + pad * 0.3;
    const int bw = 18, gap = 4, h = 90, top = 6;
    int width = (int)n * (bw + gap) + 40;
    fprintf(f, "<svg viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"cell voltages\">", width,
            top + h + 16);
    fprintf(f, "<text x=\"36\" y=\"%d\" text-anchor=\"end\">%.3f</text>", top + 8, roof);
    fprintf(f, "<text x=\"36\" y=\"%d\" text-anchor=\"end\">%.3f</text>", top + h, base);
    for (size_t i = 0; i < n; i++) {
        double frac = (p->cell_v[i] - base) / (roof - base);
        int bh = (int)lround(frac * h);
        int x = 40 + (int)i * (bw + gap);
        const char *colour = i == imin && spread > 0 ? "#2563eb"
                             : i == imax && spread > 0 ? "#dc2626"
                                                       : "#64748b";
        fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"%s>"
                   "<title>cell %zu: %.3f V%s</title></rect>",
                x, top + h - bh, bw, bh, colour,
                p->cell_balancing[i] ? " stroke=\"#eab308\" stroke-width=\"3\"" : "", i + 1,
                p->cell_v[i], p->cell_balancing[i] ? ", balancing" : "");
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%zu</text>", x + bw / 2,
                top + h + 13, i + 1);
    }
    fputs("</svg>", f);
}

static void pack_cells(FILE *f, const struct http_pack *p)
{
    fputs("<div><h3>", f);
    http_html(f, p->id);
    fputs("</h3>", f);
    if (p->ncells == 0) {
        fputs("<p class=\"meta\">No cell voltages in its newest sample.</p></div>", f);
        return;
    }
    cells_svg(f, p);
    fputs("<p class=\"meta\">lowest ", f);
    field(f, "pack", p->id, "cell_min_v", p->v[PC_CELL_MIN], 3);
    fprintf(f, " V (cell %d, blue), highest ", p->cell_min_idx);
    field(f, "pack", p->id, "cell_max_v", p->v[PC_CELL_MAX], 3);
    fprintf(f, " V (cell %d, red), spread ", p->cell_max_idx);
    field(f, "pack", p->id, "cell_diff_mv", p->v[PC_CELL_DIFF], 0);
    fputs(" mV", f);
    if (strcmp(p->health, "online") != 0) {
        fputs("; <span class=\"stalenote\">", f);
        age(f, p->v[PC_AGE]);
        fputs(" old</span>", f);
    }
    fputs("</p></div>", f);
}

/* ---------------------------------------------------------------- the page */

static void tile(FILE *f, const char *label, const char *id, const char *key, double v, int dec,
                 const char *unit, const char *where)
{
    fprintf(f, "<div class=\"tile\"><span class=\"l\">%s</span><span class=\"v\">", label);
    field(f, "bank", id, key, v, dec);
    fprintf(f, "</span> %s", unit);
    if (where && *where) {
        fputs("<span class=\"w\">", f);
        http_html(f, where);
        fputs("</span>", f);
    }
    fputs("</div>", f);
}

/* Where the bank's lowest and highest cell and its hottest sensor are. */
static void extremes(const struct http *h, const struct http_bank *b, char *lo, char *hi,
                     char *hot, size_t cap)
{
    double vlo = INFINITY, vhi = -INFINITY, vhot = -INFINITY;
    lo[0] = hi[0] = hot[0] = '\0';
    for (size_t i = 0; i < h->state.npacks; i++) {
        const struct http_pack *p = &h->state.packs[i];
        if (strcmp(p->bank, b->id) != 0 || !p->has_sample)
            continue;
        if (p->v[PC_CELL_MIN] < vlo) {
            vlo = p->v[PC_CELL_MIN];
            snprintf(lo, cap, "%s, cell %d", p->id, p->cell_min_idx);
        }
        if (p->v[PC_CELL_MAX] > vhi) {
            vhi = p->v[PC_CELL_MAX];
            snprintf(hi, cap, "%s, cell %d", p->id, p->cell_max_idx);
        }
        if (p->v[PC_TEMP_MAX] > vhot) {
            vhot = p->v[PC_TEMP_MAX];
            snprintf(hot, cap, "%s", p->id);
        }
    }
}

static void bank_section(FILE *f, const struct http *h, const struct http_bank *b,
                         const struct chart *chart)
{
    double offline_after = INFINITY;
    for (size_t i = 0; i < h->state.npacks; i++)
        if (strcmp(h->state.packs[i].bank, b->id) == 0 &&
            h->state.packs[i].v[PC_OFFLINE_AFTER] < offline_after)
            offline_after = h->state.packs[i].v[PC_OFFLINE_AFTER];
    const char *badge = b->online == b->packs ? "" : b->online == 0 ? " bad" : " warn";
    fputs("<section><h2>", f);
    http_html(f, b->name);
    fprintf(f, " <span class=\"badge%s\">", badge);
    field(f, "bank", b->id, "packs_online", b->online, 0);
    fprintf(f, "/%d online</span></h2>", b->packs);
    if (!(b->v[BC_AGE] <= offline_after)) {
        fputs("<p class=\"stalenote\">Stale: the newest sample of this bank is ", f);
        age(f, b->v[BC_AGE]);
        fputs(" old.</p>", f);
    }
    char lo[CONFIG_ID_LEN + 16], hi[CONFIG_ID_LEN + 16], hot[CONFIG_ID_LEN + 16];
    extremes(h, b, lo, hi, hot, sizeof lo);
    fputs("<div class=\"tiles\">", f);
    tile(f, "State of charge", b->id, "soc_pct", b->v[BC_SOC], 1, "%", NULL);
    tile(f, "Power", b->id, "power_w", b->v[BC_POWER], 0, "W",
         b->v[BC_POWER] > 0 ? "charging" : b->v[BC_POWER] < 0 ? "discharging" : "");
    tile(f, "Current", b->id, "current_a", b->v[BC_CURRENT], 2, "A", NULL);
    tile(f, "Lowest cell", b->id, "cell_min_v", b->v[BC_CELL_MIN], 3, "V", lo);
    tile(f, "Highest cell", b->id, "cell_max_v", b->v[BC_CELL_MAX], 3, "V", hi);
    tile(f, "Cell spread", b->id, "cell_spread_mv", b->v[BC_SPREAD], 0, "mV", NULL);
    tile(f, "Hottest", b->id, "temp_max_c", b->v[BC_TEMP_MAX], 1, "&deg;C", hot);
    tile(f, "Remaining", b->id, "remaining_ah", b->v[BC_REMAINING], 1, "Ah", NULL);
    fputs("</div><h3>Last 24 hours</h3>", f);
    if (chart)
        chart_svg(f, chart);
    else
        fputs("<p class=\"meta\">The history of the last 24 h cannot be read now.</p>", f);
    fputs("</section>", f);
}

/* Two rows per pack: its numbers, then its alarms and protections in words (full width, so a
 * phone shows them without scrolling). */
static void pack_row(FILE *f, const struct http_pack *p)
{
    const char *cls = strcmp(p->health, "online") == 0 ? "" : strcmp(p->health, "stale") == 0
                                                                 ? " class=\"stale\""
                                                                 : " class=\"offline\"";
    fprintf(f, "<tr%s><td>", cls);
    http_html(f, p->id);
    fprintf(f, "</td><td class=\"h\">%s</td><td>", health_word(p->health));
    age(f, p->has_sample ? p->v[PC_AGE] : NAN);
    static const struct {
        enum http_pack_col col;
        const char *key;
        int dec;
    } cols[] = {{PC_SOC, "soc_pct", 1},   {PC_VOLTAGE, "voltage_v", 2},
                {PC_CURRENT, "current_a", 2}, {PC_POWER, "power_w", 0},
                {PC_TEMP_MAX, "temp_max_c", 1}};
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++) {
        fputs("</td><td>", f);
        field(f, "pack", p->id, cols[i].key, p->v[cols[i].col], cols[i].dec);
    }
    fprintf(f, "</td></tr><tr%s><td class=\"t sub\" colspan=\"8\">", cls);
    if (!p->has_sample)
        fputs("no sample yet", f);
    else if (!p->flags_known)
        fputs("alarms not read (the pack does not answer the alarm command)", f);
    else if (p->flags[0] == '\0')
        fputs("no alarm, no protection", f);
    else {
        fputs("<span class=\"alarm\">", f);
        http_html(f, p->flags);
        fputs("</span>", f);
    }
    fputs(" &middot; ", f);
    field(f, "pack", p->id, "cycles", p->v[PC_CYCLES], 0);
    fputs(" cycles</td></tr>", f);
}

/* What the running daemon says about writing its history, when something fails (the history
 * read above still looks fine then: the last write was recent). */
static void history_problem(FILE *f, const struct http *h)
{
    const struct http_live *l = &h->live;
    if (l->history && l->store.failing) {
        fputs(" &middot; <span class=\"stalenote\">history: cannot write (", f);
        http_html(f, l->store.error);
        fprintf(f, "), %llu reading(s) waiting in memory</span>",
                (unsigned long long)l->store.waiting);
    }
    if (l->mqtt && l->mqtt_cursor_failing)
        fputs(" &middot; <span class=\"stalenote\">MQTT replay cursor not saved</span>", f);
}

static void header(FILE *f, const struct http *h)
{
    const struct http_state *s = &h->state;
    char when[64];
    time_t t = (time_t)(s->now_ms / 1000);
    struct tm tm;
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
    fputs("<h1>", f);
    http_html(f, h->cfg->node_name[0] ? h->cfg->node_name : h->cfg->node_id);
    fprintf(f, "</h1><p class=\"meta\">%s &middot; ", when);
    if (!s->have_daemon) {
        fputs("<span class=\"stalenote\">no daemon has written this history</span>", f);
    } else if (strcmp(s->daemon_state, "writing") == 0) {
        fputs("history: writing (last write ", f);
        age(f, s->daemon_age_s);
        fputs(" ago)", f);
    } else {
        fprintf(f, "<span class=\"stalenote\">history: %s, last write ",
                strcmp(s->daemon_state, "stopped") == 0 ? "daemon stopped" : "not writing");
        age(f, s->daemon_age_s);
        fputs(" ago</span>", f);
    }
    history_problem(f, h);
    fputs(" &middot; MQTT: ", f);
    if (!h->live.mqtt)
        fputs("off", f);
    else
        fputs(h->live.mqtt_connected ? "connected"
                                     : "<span class=\"stalenote\">disconnected</span>",
              f);
    if (s->backlog >= 0) {
        fprintf(f, ", backlog <span data-field=\"mqtt.backlog\">%lld</span> samples",
                (long long)s->backlog);
        if (s->replay_lag_s > 0) {
            fputs(" (oldest ", f);
            age(f, s->replay_lag_s);
            fputs(")", f);
        }
    }
    fprintf(f, " &middot; refreshes every %d s</p>", REFRESH_S);
}

unsigned http_page(struct http *h, FILE *f)
{
    char why[512];
    int readable = http_read_state(h, why, sizeof why) == 0;
    int64_t first = 0;
    struct chart *charts = readable ? read_charts(h, &first) : NULL;
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
               "<meta http-equiv=\"refresh\" content=\"%d\"><link rel=\"icon\" href=\"data:,\">"
               "<title>",
            REFRESH_S);
    http_html(f, h->cfg->node_name[0] ? h->cfg->node_name : h->cfg->node_id);
    fprintf(f, " &ndash; bmsfleet</title><style>%s</style></head><body>", style);
    header(f, h);
    if (!readable) {
        fputs("<section><p class=\"stalenote\">", f);
        http_html(f, why);
        fputs("</p></section></body></html>\n", f);
        return 200; /* the page still answers: it says what is wrong */
    }
    if (h->state.nbanks == 0)
        fputs("<section><p>No sample in the history yet.</p></section>", f);
    for (size_t b = 0; b < h->state.nbanks; b++)
        bank_section(f, h, &h->state.banks[b], charts ? &charts[b] : NULL);
    free(charts);
    fputs("<section><h2>Packs</h2><div class=\"scroll\"><table><tr><th>Pack</th><th>Health</th>"
          "<th>Age</th><th>SoC %</th><th>V</th><th>A</th><th>W</th><th>&deg;C</th></tr>",
          f);
    for (size_t i = 0; i < h->state.npacks; i++)
        pack_row(f, &h->state.packs[i]);
    fputs("</table></div></section><section><h2>Cells</h2><p class=\"meta\">The newest sample of "
          "each pack; an outlined cell is being balanced.</p><div class=\"cells\">",
          f);
    for (size_t i = 0; i < h->state.npacks; i++)
        pack_cells(f, &h->state.packs[i]);
    fprintf(f, "</div></section><footer>bmsfleet %s &middot; /metrics &middot; /api/latest "
               "&middot; /api/history &middot; /healthz</footer></body></html>\n",
            BMSFLEET_VERSION);
    return 200;
}
