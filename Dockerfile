FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# logs/ and var/prometheus/ exist in the image, owned by the app's user: docker-compose mounts
# named volumes there, and a new named volume takes its directory's owner from the image. (A
# volume at a path the image lacks is root's, and the app, not root, could not write its
# metrics or logs.)
RUN mkdir -p logs var/prometheus && API_ENV=development python manage.py collectstatic --no-input -v0
RUN useradd --create-home --uid 1000 leadline && chown -R leadline /app
USER leadline
EXPOSE 8000
CMD ["gunicorn", "config.wsgi", "-c", "config/gunicorn.py", "--bind", "0.0.0.0:8000"]
