"""Test support for the platform and for downstream teams: the infrastructure finder
(`casework_testing.infra`) and the pytest plugin (`casework_testing.plugin`, registered as the
`casework` pytest11 entry point) that starts the platform and hands a test a signed-in client
and a typed event stream."""
