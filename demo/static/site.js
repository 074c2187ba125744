// The tenant's own code: listen for the widget's "mais:booked" event and show it on the page.
document.addEventListener("mais:booked", function (event) {
  var item = document.createElement("li");
  item.textContent = "Booked: " + event.detail.reference;
  document.getElementById("booked-events").appendChild(item);
});
