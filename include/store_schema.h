/* store_schema: the SQL migrations embedded at build time from schema/NNN_description.sql. */
#ifndef BMSFLEET_STORE_SCHEMA_H
#define BMSFLEET_STORE_SCHEMA_H

struct store_migration {
    int version; /* NNN: applied in order, recorded in PRAGMA user_version */
    const char *name;
    const char *sql;
};

extern const struct store_migration store_migrations[];
extern const int store_migration_count;

#endif
