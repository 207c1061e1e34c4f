"""The web service: the workview on the web, server-rendered in the GOV.UK design system. People
sign in with the identity provider's browser flow; every page reads the services' read APIs with
the reader's own token (TR05) and every form sends its command through the edge as them."""
