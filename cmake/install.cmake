# install.cmake: what `cmake --install` puts where, and the .deb CPack makes of it
# (deploy/package.sh). Included from the top-level CMakeLists.txt after the bmsfleet target.
#
# Nothing goes to /etc: the example configuration is documentation, and docs/install.md copies it
# to /etc/bmsfleet/config.yaml, so an upgrade never touches a site's configuration.

set(BMSFLEET_DOCDIR ${CMAKE_INSTALL_DATADIR}/doc/bmsfleet)
# Relative to the prefix: /usr/lib/systemd/system for the .deb (the same directory as
# /lib/systemd/system on bookworm's merged /usr), /usr/local/lib/systemd/system for a local
# install; both are in systemd's search path.
set(BMSFLEET_SYSTEMD_UNITDIR "lib/systemd/system" CACHE STRING
    "Where the systemd unit goes (relative to the prefix, or absolute)")

install(TARGETS bmsfleet RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# The man pages, compressed as Debian wants them (gzip -n: the same bytes at every build).
set(BMSFLEET_MAN_GZ)
foreach(page bmsfleet.1 bmsfleet.yaml.5)
  add_custom_command(
    OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/man/${page}.gz
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/man
    COMMAND gzip -9 -n -c ${PROJECT_SOURCE_DIR}/docs/man/${page} > ${CMAKE_CURRENT_BINARY_DIR}/man/${page}.gz
    DEPENDS ${PROJECT_SOURCE_DIR}/docs/man/${page}
    COMMENT "Compressing docs/man/${page}")
  list(APPEND BMSFLEET_MAN_GZ ${CMAKE_CURRENT_BINARY_DIR}/man/${page}.gz)
endforeach()
add_custom_target(bmsfleet_man ALL DEPENDS ${BMSFLEET_MAN_GZ})
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/man/bmsfleet.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/man/bmsfleet.yaml.5.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)
install(FILES config.example.yaml deploy/99-bmsfleet.rules deploy/mosquitto-bridge.conf
              docs/install.md docs/bridge.md docs/mqtt.md docs/queries.md docs/systemd.md
              docs/container.md docs/http.md
        DESTINATION ${BMSFLEET_DOCDIR})

# The unit is written in another branch (deploy/bmsfleet.service, ExecStart=/usr/bin/bmsfleet
# run): installed when the file is there. Adding a file to deploy/ reruns the configuration, so
# the rule picks the unit up in an existing build tree too.
set(BMSFLEET_UNIT ${PROJECT_SOURCE_DIR}/deploy/bmsfleet.service)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/deploy)
if(EXISTS ${BMSFLEET_UNIT})
  install(FILES ${BMSFLEET_UNIT} DESTINATION ${BMSFLEET_SYSTEMD_UNITDIR})
else()
  message(STATUS "deploy/bmsfleet.service is not there (yet): the unit is not installed")
endif()

# ---- the .deb ----
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME bmsfleet)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "LiFePO4 battery BMS poller: RS485 to SQLite history and MQTT/Home Assistant")
set(CPACK_PACKAGE_DESCRIPTION
    "bmsfleet polls the BMS of every LiFePO4 pack on one or more RS485 buses (Service 42:\n\
Daren, PACE, Pylontech, Seplos; PACE over Modbus RTU), keeps every sample in SQLite and\n\
publishes live values, bank aggregates and the history to MQTT with Home Assistant\n\
discovery, replaying what the broker missed while it was unreachable.")
set(BMSFLEET_MAINTAINER "bmsfleet maintainers <bmsfleet@example.org>" CACHE STRING
    "Maintainer field of the .deb")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER ${BMSFLEET_MAINTAINER})
set(CPACK_DEBIAN_PACKAGE_SECTION electronics)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT) # bmsfleet_0.1.0_amd64.deb
set(CPACK_PACKAGING_INSTALL_PREFIX /usr) # the unit's ExecStart is /usr/bin/bmsfleet
set(CPACK_STRIP_FILES ON)
# Depends from the linked libraries (dpkg-shlibdeps, from dpkg-dev) ...
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# ... which cannot see paho: src/mqtt/mqtt.c dlopen()s libpaho-mqtt3a.so.1 (3as.so.1 for TLS) when a configuration has
# an mqtt section. Without MQTT the daemon runs without it, hence Recommends (installed by
# default by apt), not Depends. The same for libmicrohttpd.so.12 (src/http/http.c, `http:`).
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "libpaho-mqtt1.3, libmicrohttpd12")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "mosquitto, mosquitto-clients, sqlite3")
# systemd rereads its units when the package adds or removes one; nothing is enabled or started
# (the configuration has to be written first: docs/install.md).
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/deploy/debian/postinst ${PROJECT_SOURCE_DIR}/deploy/debian/prerm
    ${PROJECT_SOURCE_DIR}/deploy/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
