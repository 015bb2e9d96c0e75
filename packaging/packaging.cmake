# The installed layout and the Debian packages.
#
#   <prefix>/lib/airlock/bin/     airlockd, airlock-enclave (next to it, where the
#                                 kernel starts it), airlock-agent, airlock-setup
#   <prefix>/lib/airlock/plugins/ the plugins (airlockd's default plugin_dir)
#   <prefix>/bin/                 airlock (the CLI); airlockd and airlock-agent as links
#   <prefix>/share/airlock/       example configurations and data, the Grafana dashboard
#   <prefix>/lib/systemd/system/  airlockd.service
#
# Everything is relative: the kernel finds its plugins and enclave from its
# own path, so any prefix works (cmake --install build --prefix /opt/airlock).
# Components: "airlock" (the runtime) and "airlock_sdk" (headers and CMake
# package for plugin authors, sdk/install.cmake).
#
#   cmake --build build --target package     # airlock_<v>_amd64.deb, airlock-sdk_<v>_all.deb
include(GNUInstallDirs)

install(TARGETS airlockd airlock-enclave airlock-agent
  RUNTIME DESTINATION lib/airlock/bin COMPONENT airlock)
install(PROGRAMS ${CMAKE_CURRENT_LIST_DIR}/airlock-setup
  DESTINATION lib/airlock/bin COMPONENT airlock)
foreach(program airlockd airlock-agent)
  install(CODE "
    file(MAKE_DIRECTORY \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/bin\")
    file(CREATE_LINK ../lib/airlock/bin/${program}
         \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/bin/${program}\" SYMBOLIC)"
    COMPONENT airlock)
endforeach()
install(FILES ${PROJECT_SOURCE_DIR}/configs/quickstart.json
              ${PROJECT_SOURCE_DIR}/configs/quickstart-policy.json
  DESTINATION share/airlock/examples COMPONENT airlock)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/configs/quickstart-data
  DESTINATION share/airlock/examples COMPONENT airlock)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/grafana/airlock-dashboard.json
  DESTINATION share/airlock/grafana COMPONENT airlock)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/systemd/airlockd.service
  DESTINATION lib/systemd/system COMPONENT airlock)

set(CPACK_PACKAGE_NAME airlock)
set(CPACK_PACKAGE_VENDOR "Airlock")
set(CPACK_PACKAGE_CONTACT "Airlock maintainers <maintainers@airlock.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Just-in-time data access: time-boxed, approved, isolated, audited")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_GENERATOR DEB)
# Debug information stays in the build tree.
set(CPACK_STRIP_FILES TRUE)
set(CPACK_COMPONENTS_ALL airlock airlock_sdk)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_AIRLOCK_PACKAGE_NAME airlock)
set(CPACK_DEBIAN_AIRLOCK_DESCRIPTION
  "Just-in-time data access kernel, its enclaves, plugins, agent and CLI")
set(CPACK_DEBIAN_AIRLOCK_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_AIRLOCK_PACKAGE_DEPENDS "adduser, openssl")
set(CPACK_DEBIAN_AIRLOCK_PACKAGE_CONTROL_EXTRA
  "${CMAKE_CURRENT_LIST_DIR}/debian/postinst;${CMAKE_CURRENT_LIST_DIR}/debian/prerm;${CMAKE_CURRENT_LIST_DIR}/debian/postrm")
set(CPACK_DEBIAN_AIRLOCK_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_AIRLOCK_SDK_PACKAGE_NAME airlock-sdk)
set(CPACK_DEBIAN_AIRLOCK_SDK_DESCRIPTION
  "Airlock plugin SDK: the C ABI, the C++ layer and the CMake package")
set(CPACK_DEBIAN_AIRLOCK_SDK_PACKAGE_ARCHITECTURE all)
include(CPack)
