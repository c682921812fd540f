"""Digit Lab: the Streamlit entry point. Shared setup lives here; each page is a file in pages/."""

import streamlit as st

from ui import identity, navigation, state, streamlit_patches

streamlit_patches.apply()  # a chart's tick never undoes a page switch; no Keras reset after each run

# .streamlit/config.toml hides the page list Streamlit itself makes from the pages/ folder (on the
# first load after a start it showed every page name, Teacher included, before sign-in); our own
# navigation below shows it, once someone has signed in.
list_hidden_here = st.get_option("client.showSidebarNavigation") is False
if list_hidden_here:
    st.set_option("client.showSidebarNavigation", True)

st.set_page_config(page_title="Digit Lab", page_icon="🔢", layout="wide")
state.warm_up()  # serve.py warms a training worker as the server starts; `streamlit run app.py` here

who = identity.current()
if who is None:
    # Sign-in first (OpenID Connect or class code): every page's address shows the sign-in screen
    # and nothing else, no data and no page list, until someone signs in.
    st.navigation(
        [st.Page(identity.sign_in_page, title="Sign in", url_path="sign-in", default=True)]
        + [
            st.Page(identity.sign_in_page, title="Sign in", url_path=path)
            for path in navigation.every_path()
            if path and path != "sign-in"
        ],
        position="hidden",
    ).run()
    st.stop()
if list_hidden_here:
    st.rerun()  # this run's browser was told "no page list" (the first load after a start): tell it again

page = st.navigation(navigation.pages(who.teacher))
identity.sidebar(who)
page.run()
state.save_work()  # what the page changed as it ran (its start saved what the click changed)
