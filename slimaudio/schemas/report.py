from slimaudio.config import Field, register

register("report", {
    "title": Field(str, doc="title of reports/index.html"),
})
