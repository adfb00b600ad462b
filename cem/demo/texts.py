"""Every text a demo customer, bot or agent writes, in Spanish and English.

A key may repeat: each entry is one alternative. `comment.<touchpoint>.<band>` adds
touchpoint-specific survey comments to the general `comment.<band>` ones.
"""

from __future__ import annotations

CATALOGUE = """
opener.delivery_status
  es: Hola, mi pedido todavía no ha llegado y el seguimiento no se mueve.
  en: Hi, my order still hasn't arrived and the tracking isn't moving.
opener.delivery_status
  es: ¿Me podéis decir cuándo llega mi paquete?
  en: Can you tell me when my parcel will arrive?
opener.billing
  es: Me habéis cobrado dos veces el mismo pedido.
  en: I've been charged twice for the same order.
opener.billing
  es: No encuentro la factura de mi última compra.
  en: I can't find the invoice for my last purchase.
opener.return_request
  es: Quiero devolver unas zapatillas, me quedan pequeñas.
  en: I'd like to return some trainers, they're too small.
opener.return_request
  es: ¿Cómo hago una devolución?
  en: How do I return an item?
opener.technical_issue
  es: La app se cierra cuando intento pagar.
  en: The app crashes when I try to pay.
opener.technical_issue
  es: La web me da un error al finalizar la compra.
  en: The website shows an error at checkout.
opener.account_access
  es: No puedo entrar en mi cuenta, no me llega el correo para cambiar la contraseña.
  en: I can't log in, the password reset email never arrives.
opener.product_info
  es: ¿Tenéis esta chaqueta en talla M?
  en: Do you have this jacket in size M?
opener.product_info
  es: ¿El abrigo es impermeable?
  en: Is the coat waterproof?
opener.cancellation
  es: Quiero darme de baja del programa de fidelización.
  en: I want to cancel my loyalty membership.
opener.cancellation
  es: Quiero cancelar mi pedido.
  en: I want to cancel my order.
bot.greeting
  es: Hola, soy Lía, la asistente virtual. ¿En qué puedo ayudarte?
  en: Hi, I'm Lia, the virtual assistant. How can I help?
bot.self_serve
  es: Puedes consultarlo en Mi cuenta > Pedidos. ¿Te ha servido?
  en: You can check it in My account > Orders. Did that help?
bot.handoff
  es: Te paso con una persona del equipo, un momento por favor.
  en: Let me connect you with someone from the team, one moment please.
customer.thanks
  es: ¡Perfecto, muchas gracias!
  en: Perfect, thank you so much!
customer.thanks
  es: Vale, gracias.
  en: OK, thanks.
customer.chase
  es: Sigue sin funcionar.
  en: It still doesn't work.
customer.chase
  es: ¿Cuánto más tengo que esperar?
  en: How much longer do I have to wait?
customer.chase
  es: El número de pedido es el que os he dado.
  en: The order number is the one I gave you.
agent.hello
  es: Hola, soy {}. Ahora mismo lo reviso.
  en: Hi, I'm {}. Let me check that for you.
agent.reply
  es: Siento mucho las molestias, ya lo he escalado.
  en: I'm very sorry for the trouble, I've escalated it.
agent.reply
  es: Te acabo de enviar un correo con los pasos.
  en: I've just emailed you the steps.
agent.solved
  es: Ya está solucionado. ¿Puedo ayudarte en algo más?
  en: That's sorted now. Anything else I can help with?
agent.escalated
  es: Lo paso al equipo especialista y te escribimos en cuanto sepamos algo.
  en: I'm passing this to the specialist team; we'll write as soon as we know more.
social.post
  es: @tiendademo tres semanas esperando un reembolso. Vergonzoso.
  en: @demoshop three weeks waiting for a refund. Shameful.
social.post
  es: Me encanta mi pedido, ¡llegó en un día! 😍
  en: Love my order, it arrived in one day! 😍
social.post
  es: ¿Alguien más tiene problemas con la app hoy?
  en: Anyone else having trouble with the app today?
social.reply
  es: Hola, lo sentimos. Escríbenos por privado con tu número de pedido y lo miramos.
  en: Hi, sorry to hear that. DM us your order number and we'll look into it.
sms.auto_reply
  es: Hemos recibido tu mensaje, te respondemos en breve.
  en: We've got your message and will reply shortly.
sms.notice
  es: Tu pedido {} llega hoy entre las 10:00 y las 14:00. Responde si necesitas cambiarlo.
  en: Your order {} arrives today between 10:00 and 14:00. Reply to change the delivery.
sms.ask
  es: ¿Lo pueden dejar en conserjería?
  en: Can you leave it with the concierge?
sms.answer
  es: Claro, lo dejamos en conserjería.
  en: Of course, we'll leave it with the concierge.
email.support_reply
  es: Gracias, pero sigo sin recibir el reembolso.
  en: Thanks, but I still haven't received the refund.
email.support_reply
  es: Perfecto, problema resuelto.
  en: Great, problem solved.
email.campaign_reply
  es: Por favor, dejad de enviarme correos.
  en: Please stop emailing me.
email.campaign_reply
  es: ¿La oferta vale también en tienda?
  en: Is the offer valid in store too?
subject.newsletter
  es: Novedades de la semana
  en: This week's new arrivals
subject.promo
  es: Rebajas: hasta un 40 % de descuento
  en: Sale: up to 40% off
subject.onboarding-welcome
  es: Te damos la bienvenida a Tienda Demo
  en: Welcome to Demo Shop
subject.onboarding-tips
  es: 3 trucos para sacar partido a tu cuenta
  en: 3 tips to get the most from your account
case.resolution
  es: Reembolso emitido.
  en: Refund issued.
case.resolution
  es: Producto de sustitución enviado.
  en: Replacement sent.
case.resolution
  es: Incidencia técnica corregida.
  en: Technical issue fixed.
case.resolution
  es: Información facilitada al cliente.
  en: Information given to the customer.
comment.neg
  es: Esperé muchísimo y al final no me lo solucionaron.
  en: I waited ages and it still wasn't fixed.
comment.neg
  es: Me pasaron de un agente a otro y tuve que repetirlo todo.
  en: I was passed from one agent to another and had to repeat everything.
comment.neg
  es: Muy mala experiencia, me estoy planteando irme a la competencia.
  en: Terrible experience, I'm thinking of switching to a competitor.
comment.neg
  es: Nadie me da una respuesta clara.
  en: Nobody gives me a straight answer.
comment.mid
  es: Bien, aunque tardaron un poco.
  en: Fine, although it took a while.
comment.mid
  es: Correcto, sin más.
  en: OK, nothing special.
comment.mid
  es: Me ayudaron, pero el proceso es lento.
  en: They helped, but the process is slow.
comment.pos
  es: Muy amable y rápida, ¡gracias!
  en: Very kind and quick, thank you!
comment.pos
  es: Todo perfecto, lo recomiendo.
  en: Everything was perfect, I'd recommend it.
comment.pos
  es: Me resolvieron el problema a la primera.
  en: They solved my problem first time.
comment.delivery.neg
  es: El paquete llegó tarde y la caja estaba rota.
  en: The parcel arrived late and the box was damaged.
comment.delivery.neg
  es: El repartidor ni siquiera llamó al timbre.
  en: The courier didn't even ring the bell.
comment.delivery.pos
  es: Llegó antes de lo previsto.
  en: It arrived earlier than expected.
comment.checkout.pos
  es: El pago fue rapidísimo.
  en: Paying was really quick.
comment.checkout.neg
  es: El código de descuento no funcionaba.
  en: The discount code didn't work.
comment.store_visit.pos
  es: El dependiente me atendió genial.
  en: The shop assistant was great.
comment.store_visit.neg
  es: Mucha cola en caja.
  en: Long queue at the till.
comment.support_line.neg
  es: Cuarenta minutos de espera al teléfono.
  en: Forty minutes waiting on the phone.
comment.returns.neg
  es: Todavía no me han devuelto el dinero.
  en: I still haven't got my money back.
"""


def parse_catalogue(text: str) -> dict[str, tuple[tuple[str, str], ...]]:
    """Each key's (Spanish, English) alternatives, in catalogue order."""
    entries: dict[str, list[tuple[str, str]]] = {}
    lines = [line.strip() for line in text.strip().splitlines()]
    for key, es, en in zip(lines[::3], lines[1::3], lines[2::3], strict=True):
        if not (es.startswith("es: ") and en.startswith("en: ")):
            raise ValueError(f"catalogue entry {key!r} needs an 'es:' and an 'en:' line")
        entries.setdefault(key, []).append((es[4:], en[4:]))
    return {key: tuple(pairs) for key, pairs in entries.items()}


TEXTS = parse_catalogue(CATALOGUE)
