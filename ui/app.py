import streamlit as st

st.title("supportbot")
st.write("The chat and agent-assist pages arrive with the UI issue.")
